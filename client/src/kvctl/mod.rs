//! The parts of `kvctl`: argument parsing, command execution, output
//! rendering (pure functions of response values, so they are testable
//! without a server) and exit codes.

pub mod args;
pub mod connection;
pub mod encoding;
pub mod exit;
pub mod human;
pub mod json;
pub mod repair;
pub mod run;
pub mod topology;
