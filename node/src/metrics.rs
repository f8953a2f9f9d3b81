//! Shared helpers for the node's Prometheus metric definitions.
//!
//! Every module defines its own metrics (`server::metrics`,
//! `membership::metrics`, `replication::metrics`, `topology::progress`,
//! `worker`); this module only holds what they would otherwise each write
//! again. It may call `prometheus` and nothing in this crate.

/// Unwraps the result of a static metric definition or registration.
///
/// Metric names, help texts and labels are literals in the code, so a
/// failure is a programming error (caught by any test that builds the
/// metrics), never input from outside; the panic names the caller's line.
#[track_caller]
pub fn must<T>(r: prometheus::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("invalid metric definition: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use prometheus::IntCounter;

    use super::must;

    #[test]
    fn a_valid_definition_passes_and_an_invalid_one_panics_with_the_reason() {
        assert_eq!(must(IntCounter::new("ok_total", "help")).get(), 0);
        let panicked = std::panic::catch_unwind(|| must(IntCounter::new("bad name", "help")));
        let message = panicked.err().and_then(|p| p.downcast_ref::<String>().cloned()).unwrap_or_default();
        assert!(message.starts_with("invalid metric definition: "), "{message}");
    }
}
