//! The agent's pipeline, shared by every streaming command: the sensor thread
//! and enrichment (`pipeline`), event selection (`filter`), the rules consumer
//! (`detect`, with alerts held for container metadata in `held`), the event printer (`output`) and the config file (`config`).

pub mod config;
pub mod detect;
pub mod filter;
pub mod held;
pub mod output;
pub mod pipeline;
