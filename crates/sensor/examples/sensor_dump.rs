//! Print decoded events as JSON lines: `sensor_dump [--host] [seconds]`.
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let include_host = args.iter().any(|a| a == "--host");
    let secs: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(5);
    let mut sensor = sensor::Sensor::start(sensor::SensorConfig { include_host, ..Default::default() })?;
    eprintln!("{}", serde_json::to_string_pretty(&sensor.status())?);
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        sensor.poll(&mut |ev| println!("{}", serde_json::to_string(&ev).unwrap_or_default()))?;
        std::thread::sleep(sensor::POLL_PERIOD);
    }
    eprintln!("{}", serde_json::to_string(&sensor.stats())?);
    Ok(())
}
