//! The RESP listener with a real Redis client (the `redis` crate) against a
//! real `kvnode`: commands, pipelining, cross-protocol reads, and bad input
//! (oversized values, unknown commands, broken framing) answered with clear
//! errors and without losing data. A listener whose port is taken fails the
//! start with an error naming its own flag (`--resp-addr`, `--grpc-addr`,
//! `--http-addr`).

use std::io::{Read as _, Write as _};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use redis::AsyncCommands as _;
use ringkv_e2e::{NodeOptions, NodeProcess, grpc, wait_until};

async fn start() -> Result<(tempfile::TempDir, NodeProcess, redis::Client)> {
    let dir = tempfile::tempdir()?;
    let node = NodeProcess::start(
        NodeOptions::new(dir.path().join("data"))
            .arg("--resp-addr")
            .arg("127.0.0.1:0")
            .arg("--max-value-bytes")
            .arg("4096"),
    )
    .await?;
    let url = node.resp_url().context("the ready line has no resp= address")?;
    let client = redis::Client::open(url)?;
    Ok((dir, node, client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_client_commands_and_pipelines() -> Result<()> {
    let (_dir, node, client) = start().await?;
    let mut con = client.get_multiplexed_async_connection().await?;

    let pong: String = redis::cmd("PING").query_async(&mut con).await?;
    ensure!(pong == "PONG", "PING answered {pong}");
    let () = con.set("greeting", "hello").await?;
    let got: Option<String> = con.get("greeting").await?;
    ensure!(got.as_deref() == Some("hello"), "GET greeting = {got:?}");
    let missing: Option<String> = con.get("nope").await?;
    ensure!(missing.is_none(), "GET of a missing key = {missing:?}");

    let n: i64 = con.incr("counter", 5).await?;
    let n2: i64 = con.decr("counter", 2).await?;
    ensure!((n, n2) == (5, 3), "INCRBY/DECRBY gave {n}, {n2}");
    let not_int: redis::RedisResult<i64> = con.incr("greeting", 1).await;
    ensure!(not_int.is_err(), "INCR of a non-integer succeeded");

    let () = con.set_ex("session", "s1", 100).await?;
    let ttl: i64 = con.ttl("session").await?;
    ensure!((90..=100).contains(&ttl), "TTL session = {ttl}");
    let ttl_none: i64 = con.ttl("greeting").await?;
    let ttl_missing: i64 = con.ttl("nope").await?;
    ensure!((ttl_none, ttl_missing) == (-1, -2), "TTL without expiry / missing = {ttl_none}, {ttl_missing}");

    let nx_first: bool =
        redis::cmd("SET").arg("once").arg("1").arg("NX").query_async::<Option<String>>(&mut con).await?.is_some();
    let nx_second: bool =
        redis::cmd("SET").arg("once").arg("2").arg("NX").query_async::<Option<String>>(&mut con).await?.is_some();
    ensure!(nx_first && !nx_second, "SET NX applied {nx_first} then {nx_second}");

    // 500 SETs and 500 GETs in one pipeline each: answers come back in order.
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.set(format!("p{i}"), format!("v{i}")).ignore();
    }
    let () = pipe.query_async(&mut con).await?;
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.get(format!("p{i}"));
    }
    let values: Vec<String> = pipe.query_async(&mut con).await?;
    ensure!(values.len() == 500, "pipeline returned {} values", values.len());
    for (i, v) in values.iter().enumerate() {
        ensure!(*v == format!("v{i}"), "pipelined GET p{i} = {v}");
    }
    let many: Vec<Option<String>> = con.mget(&["p1", "nope", "p2"]).await?;
    ensure!(many == vec![Some("v1".into()), None, Some("v2".into())], "MGET = {many:?}");
    let exists: i64 = con.exists(&["p1", "p2", "nope"]).await?;
    ensure!(exists == 2, "EXISTS = {exists}");
    let deleted: i64 = con.del(&["p1", "nope"]).await?;
    ensure!(deleted == 1, "DEL answered {deleted}");
    let gone: Option<String> = con.get("p1").await?;
    ensure!(gone.is_none(), "p1 still readable after DEL: {gone:?}");

    // What RESP wrote, gRPC reads.
    let mut kv = grpc::connect(&node.grpc_endpoint()).await?;
    ensure!(grpc::get_value(&mut kv, "p7").await?.as_deref() == Some(&b"v7"[..]), "gRPC does not see the RESP write");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_loses_nothing() -> Result<()> {
    let (_dir, node, client) = start().await?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let () = con.set("kept", "safe").await?;

    let too_big = vec![b'x'; 8192];
    let err = con.set::<_, _, ()>("big", too_big).await.expect_err("an 8 KiB value over a 4 KiB limit was accepted");
    ensure!(err.to_string().contains("RKV-VALUE-TOO-LARGE"), "oversized value error: {err}");
    let err = redis::cmd("HGETALL").arg("x").query_async::<()>(&mut con).await.expect_err("HGETALL accepted");
    ensure!(err.to_string().contains("unknown command"), "unknown command error: {err}");
    let err = redis::cmd("SET").arg("k").arg("v").arg("XX").query_async::<()>(&mut con).await.expect_err("XX accepted");
    ensure!(err.to_string().contains("syntax error"), "SET XX error: {err}");
    // The connection survives command errors.
    let kept: Option<String> = con.get("kept").await?;
    ensure!(kept.as_deref() == Some("safe"), "after errors GET kept = {kept:?}");

    // Broken framing: an error reply, then the node closes the connection.
    let addr = node.resp_url().context("resp url")?.trim_start_matches("redis://").trim_end_matches('/').to_owned();
    let reply = tokio::task::spawn_blocking(move || -> Result<String> {
        let mut raw = std::net::TcpStream::connect(&addr)?;
        raw.set_read_timeout(Some(Duration::from_secs(10)))?;
        raw.write_all(b"*1\r\n$4\r\nPING\r\n*1\r\n+oops\r\n")?;
        let mut answer = String::new();
        raw.read_to_string(&mut answer)?;
        Ok(answer)
    })
    .await??;
    ensure!(reply.starts_with("+PONG\r\n-ERR Protocol error"), "raw reply: {reply:?}");

    let kept: Option<String> = client.get_multiplexed_async_connection().await?.get("kept").await?;
    ensure!(kept.as_deref() == Some("safe"), "after a protocol error GET kept = {kept:?}");
    let big: Option<Vec<u8>> = con.get("big").await?;
    ensure!(big.is_none(), "the rejected value was stored");
    Ok(())
}

/// Runs `kvnode serve` with `flag` set to an address another socket holds,
/// and returns its exit status and stderr.
async fn serve_on_a_taken_port(flag: &str) -> Result<(std::process::ExitStatus, String)> {
    let dir = tempfile::tempdir()?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let taken_addr = taken.local_addr()?.to_string();
    let mut args: Vec<String> =
        ["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--resp-addr", "127.0.0.1:0"]
            .map(str::to_owned)
            .to_vec();
    let at = args.iter().position(|a| a == flag).context("unknown flag")?;
    args[at + 1] = taken_addr;
    let stderr_path = dir.path().join("stderr.log");
    let mut child = std::process::Command::new(&ringkv_e2e::binaries::binaries()?.kvnode)
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()?;
    let mut status = None;
    let exited = wait_until(Duration::from_secs(30), "kvnode exits on a taken port", async || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    })
    .await;
    if exited.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    exited?;
    drop(taken);
    Ok((status.context("exit status")?, std::fs::read_to_string(&stderr_path)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_reported_with_the_flag_of_its_own_listener() -> Result<()> {
    for flag in ["--resp-addr", "--grpc-addr", "--http-addr"] {
        let (status, stderr) = serve_on_a_taken_port(flag).await?;
        ensure!(!status.success(), "{flag} on a taken port: kvnode exited {status}\n{stderr}");
        let error = stderr.lines().find(|l| l.contains("cannot listen on")).unwrap_or_default();
        ensure!(error.contains(&format!("choose another with {flag}")), "{flag}: error does not name it:\n{stderr}");
        let others = ["--resp-addr", "--grpc-addr", "--http-addr"].into_iter().filter(|f| *f != flag);
        for other in others {
            ensure!(!error.contains(other), "{flag}: error names {other} too: {error}");
        }
    }
    Ok(())
}
