//! The agent's pipeline, shared by every streaming command: the sensor thread
//! and enrichment (`pipeline`), event selection (`filter`), the rules consumer
//! (`detect`, with alerts held for container metadata in `held` and drop
//! alerts from `drops`), the event printer (`output`), the agent's own
//! figures and health endpoints (`metrics`), the per-container rates rules
//! read (`rates`), the config file (`config`), the privilege check at start
//! (`privileges`) and the reload on file change (`watch`).

pub mod config;
pub mod detect;
pub mod drops;
pub mod filter;
pub mod held;
pub mod metrics;
pub mod output;
pub mod pipeline;
pub mod privileges;
pub mod rates;
pub mod watch;
