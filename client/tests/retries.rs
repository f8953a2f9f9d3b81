//! Component test: the client against an in-process fake KV server on
//! `127.0.0.1:0`. Proves that reads are retried on UNAVAILABLE, writes never
//! are, per-request timeouts fire, and statuses map to `ClientError`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ringkv_client::proto::kv_server::{Kv, KvServer};
use ringkv_client::proto::*;
use ringkv_client::{Client, ClientError, PutOptions, RetryPolicy, ScanOptions};
use tonic::{Request, Response, Status};

/// Fails the first `get_failures` Gets with UNAVAILABLE, then finds "v";
/// Put is always UNAVAILABLE; Scan never answers in time; Touch is invalid.
#[derive(Debug, Default)]
struct FakeKv {
    get_failures: u32,
    gets: AtomicU32,
    puts: AtomicU32,
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Kv for FakeKv {
    async fn get(&self, request: Request<GetRequest>) -> Reply<GetResponse> {
        let call = self.gets.fetch_add(1, Ordering::SeqCst);
        if call < self.get_failures {
            return Err(Status::unavailable("replicas down"));
        }
        let request = request.into_inner();
        let found = request.key.as_ref() == b"k" && request.keyspace == "default";
        let siblings = vec![Sibling { value: "v".into(), ..Default::default() }];
        Ok(Response::new(GetResponse { found, siblings, version: 1, ..Default::default() }))
    }
    async fn put(&self, _: Request<PutRequest>) -> Reply<PutResponse> {
        self.puts.fetch_add(1, Ordering::SeqCst);
        Err(Status::unavailable("replicas down"))
    }
    async fn scan(&self, _: Request<ScanRequest>) -> Reply<ScanResponse> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(Response::new(ScanResponse::default()))
    }
    async fn touch(&self, _: Request<TouchRequest>) -> Reply<TouchResponse> {
        Err(Status::invalid_argument("ttl too large"))
    }
    async fn delete(&self, _: Request<DeleteRequest>) -> Reply<DeleteResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn batch_get(&self, _: Request<BatchGetRequest>) -> Reply<BatchGetResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn batch_write(&self, _: Request<BatchWriteRequest>) -> Reply<BatchWriteResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn compare_and_set(&self, _: Request<CompareAndSetRequest>) -> Reply<CompareAndSetResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn increment(&self, _: Request<IncrementRequest>) -> Reply<IncrementResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn list(&self, _: Request<ListRequest>) -> Reply<ListResponse> {
        Err(Status::unimplemented("fake"))
    }
}

/// Serves `fake` on an ephemeral port and returns a client of it.
async fn serve(fake: Arc<FakeKv>) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(KvServer::from_arc(fake))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    Client::builder(address.to_string())
        .timeout(Duration::from_millis(300))
        .retry(RetryPolicy { max_retries: 2, initial_backoff: Duration::from_millis(1), ..RetryPolicy::default() })
        .connect()
        .await
        .expect("connect to the fake server")
}

#[tokio::test]
async fn reads_are_retried_on_unavailable_until_they_succeed() {
    let fake = Arc::new(FakeKv { get_failures: 2, ..FakeKv::default() });
    let client = serve(fake.clone()).await;
    let record = client.get("k").await.expect("third attempt succeeds");
    assert_eq!(record.and_then(|r| r.value().cloned()).as_deref(), Some(&b"v"[..]));
    assert_eq!(fake.gets.load(Ordering::SeqCst), 3);
    assert_eq!(client.get("missing").await.expect("found: false is not an error"), None);
}

#[tokio::test]
async fn read_retries_are_bounded() {
    let fake = Arc::new(FakeKv { get_failures: 100, ..FakeKv::default() });
    let client = serve(fake.clone()).await;
    let err = client.get("k").await.expect_err("always unavailable");
    assert!(matches!(err, ClientError::Unavailable { rpc: "Get", .. }), "{err}");
    assert_eq!(fake.gets.load(Ordering::SeqCst), 3, "1 attempt + 2 retries");
}

#[tokio::test]
async fn writes_are_never_retried() {
    let fake = Arc::new(FakeKv::default());
    let client = serve(fake.clone()).await;
    let err = client.put("k", "v", PutOptions::default()).await.expect_err("unavailable");
    assert!(err.is_unavailable(), "{err}");
    assert_eq!(fake.puts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slow_requests_time_out_and_statuses_map() {
    let client = serve(Arc::new(FakeKv::default())).await;
    let started = std::time::Instant::now();
    let err = client.scan(ScanOptions::default()).await.expect_err("the fake never answers");
    assert!(matches!(err, ClientError::Timeout { rpc: "Scan", .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "timed out per attempt, not per retry budget");
    let err = client.touch("k", 1).await.expect_err("invalid");
    assert!(matches!(err, ClientError::InvalidArgument { ref message, .. } if message == "ttl too large"), "{err}");
}

#[tokio::test]
async fn connecting_to_nothing_says_what_to_do() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    let err = Client::connect(&address.to_string()).await.expect_err("nothing listens");
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("kvnode dev"), "{err}");
}
