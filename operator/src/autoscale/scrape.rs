//! Reading the nodes' Prometheus text: the two series the autoscaler needs.

/// `ringkv_requests_total` (summed over labels) and `ringkv_storage_disk_bytes` of one node.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NodeSample {
    /// Client requests served since the node started.
    pub requests_total: f64,
    /// Bytes on disk.
    pub disk_bytes: f64,
}

/// Parses the Prometheus text format, ignoring every other series and any
/// line it cannot read (a scrape must never fail the reconcile).
pub fn parse(text: &str) -> NodeSample {
    let mut s = NodeSample::default();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        let value_part = match rest.rfind('}') {
            Some(i) if rest.starts_with('{') => &rest[i + 1..],
            _ => rest,
        };
        let Some(value) = value_part.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if !value.is_finite() {
            continue;
        }
        match name {
            "ringkv_requests_total" => s.requests_total += value,
            "ringkv_storage_disk_bytes" => s.disk_bytes += value,
            _ => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_request_counters_over_labels_and_reads_disk_bytes() {
        let text = "# HELP ringkv_requests_total Client requests\n\
                    # TYPE ringkv_requests_total counter\n\
                    ringkv_requests_total{api=\"grpc\",op=\"get\",outcome=\"ok\"} 120\n\
                    ringkv_requests_total{api=\"http\",op=\"put\",outcome=\"RKV-X\"} 3\n\
                    ringkv_request_duration_seconds_count{api=\"grpc\",op=\"get\"} 999\n\
                    ringkv_storage_disk_bytes 4096\n\
                    ringkv_requests_total{api=\"grpc\",op=\"put\",outcome=\"ok\"} NaN\n\
                    garbage line\n";
        assert_eq!(parse(text), NodeSample { requests_total: 123.0, disk_bytes: 4096.0 });
    }

    #[test]
    fn empty_or_foreign_text_is_zero() {
        assert_eq!(parse(""), NodeSample::default());
        assert_eq!(parse("up 1\nother_total{a=\"b\"} 5"), NodeSample::default());
    }
}

/// The capability of reading one node's metrics.
pub trait MetricsScraper: Send + Sync + std::fmt::Debug {
    /// Scrapes `http://IP:PORT/metrics`; None when the node does not answer.
    fn scrape<'a>(&'a self, pod_ip: &'a str) -> futures::future::BoxFuture<'a, Option<NodeSample>>;
}

/// [`MetricsScraper`] over HTTP with a short deadline.
#[derive(Debug, Clone)]
pub struct HttpScraper {
    client: reqwest::Client,
}

impl HttpScraper {
    /// A scraper with a 5 s deadline per node.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { client }
    }
}

impl Default for HttpScraper {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsScraper for HttpScraper {
    fn scrape<'a>(&'a self, pod_ip: &'a str) -> futures::future::BoxFuture<'a, Option<NodeSample>> {
        Box::pin(async move {
            let url = format!("http://{pod_ip}:{}/metrics", crate::resources::HTTP_PORT);
            let resp = self.client.get(&url).send().await.ok()?.error_for_status().ok()?;
            Some(parse(&resp.text().await.ok()?))
        })
    }
}
