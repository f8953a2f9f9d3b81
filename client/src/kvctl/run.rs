//! Runs one `kvctl` command: connects, calls the client library, writes the
//! rendered answer. Negative answers that scripts test for (not found, not
//! applied) are returned as [`Miss`] errors after the output is written.

use std::io::{Read as _, Write};

use anyhow::Context as _;
use bytes::Bytes;
use ringkv_client::{Client, ListOptions, PutOptions, ScanOptions};

use super::args::{CasArgs, Cli, Command, IncrArgs, ListArgs, PutArgs, ScanArgs};
use super::exit::Miss;
use super::{human, json};

/// Where a command writes.
pub(super) struct Io<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    json: bool,
}

impl Io<'_> {
    /// Writes the JSON or the human text, whichever was asked for.
    pub(super) fn emit(&mut self, json: impl FnOnce() -> String, human: impl FnOnce() -> String) -> anyhow::Result<()> {
        let text = if self.json { json() } else { human() };
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }

    fn note(&mut self, note: &str) -> anyhow::Result<()> {
        writeln!(self.err, "{note}")?;
        Ok(())
    }
}

/// Runs the command of `cli`.
pub async fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let connection = cli.connection.config(&cli.endpoint)?;
    let mut builder = connection.builder().timeout(cli.timeout).connect_timeout(cli.timeout).keyspace(cli.keyspace);
    if let Some(consistency) = cli.consistency {
        builder = builder.consistency(consistency);
    }
    let client = builder.connect().await?;
    let mut io = Io { out, err, json: cli.json };
    match cli.command {
        Command::Put(args) => put(&client, &mut io, args).await,
        Command::Get { key } => get(&client, &mut io, key).await,
        Command::BatchGet { keys } => batch_get(&client, &mut io, keys).await,
        Command::Del { key, context } => del(&client, &mut io, key, context).await,
        Command::List(args) => list(&client, &mut io, args).await,
        Command::Scan(args) => scan(&client, &mut io, args).await,
        Command::Cas(args) => cas(&client, &mut io, args).await,
        Command::Incr(args) => incr(&client, &mut io, args).await,
        Command::Ttl { key, secs } => ttl(&client, &mut io, key, secs).await,
        Command::Repair(args) => super::repair::run(&client, io.out, io.json, args).await,
        Command::Status => {
            let response = client.cluster_status().await?;
            io.emit(|| json::status(&response), || human::status(&response))
        }
        Command::Ring => super::topology::ring(&client, &mut io).await,
        Command::Decommission { no_wait } => {
            super::topology::decommission(&client, &connection, &mut io, no_wait, cli.timeout).await
        }
        Command::Removenode { host_id, no_wait } => {
            super::topology::removenode(&client, &mut io, host_id, no_wait).await
        }
    }
}

/// The value argument: `-` reads stdin byte for byte.
fn value_arg(value: String) -> anyhow::Result<Bytes> {
    if value != "-" {
        return Ok(Bytes::from(value));
    }
    let mut buffer = Vec::new();
    std::io::stdin().read_to_end(&mut buffer).context("reading the value from stdin (the value argument was `-`)")?;
    Ok(Bytes::from(buffer))
}

async fn put(client: &Client, io: &mut Io<'_>, args: PutArgs) -> anyhow::Result<()> {
    let value = value_arg(args.value)?;
    let options = PutOptions {
        ttl_seconds: args.ttl,
        context: args.context.unwrap_or_default(),
        if_absent: args.if_absent,
        consistency: None,
    };
    let response = client.put(args.key.clone(), value, options).await?;
    if !response.applied && io.json {
        io.emit(|| json::put(args.key.as_bytes(), &response), String::new)?;
    }
    if !response.applied {
        return Err(Miss::PutNotApplied { key: args.key }.into());
    }
    io.emit(|| json::put(args.key.as_bytes(), &response), || "OK\n".to_owned())
}

async fn get(client: &Client, io: &mut Io<'_>, key: String) -> anyhow::Result<()> {
    let record = client.get(key.clone()).await?;
    if io.json {
        io.emit(|| json::get(key.as_bytes(), record.as_ref()), String::new)?;
    }
    let Some(record) = record else {
        return Err(Miss::NotFound { key }.into());
    };
    if !io.json {
        let rendered = human::get(&record);
        io.out.write_all(rendered.stdout.as_bytes())?;
        if let Some(note) = rendered.note {
            io.note(&note)?;
        }
    }
    Ok(())
}

async fn batch_get(client: &Client, io: &mut Io<'_>, keys: Vec<String>) -> anyhow::Result<()> {
    let results = client.batch_get(keys).await?;
    io.emit(|| json::batch_get(&results), || human::batch_get(&results))
}

async fn del(client: &Client, io: &mut Io<'_>, key: String, context: Option<Bytes>) -> anyhow::Result<()> {
    let response = client.delete(key.clone(), context.unwrap_or_default()).await?;
    io.emit(|| json::delete(key.as_bytes(), &response), || "OK\n".to_owned())?;
    if !response.existed && !io.json {
        io.note(&format!("note: key {key:?} had no live value"))?;
    }
    Ok(())
}

async fn list(client: &Client, io: &mut Io<'_>, args: ListArgs) -> anyhow::Result<()> {
    let options = ListOptions {
        limit: args.limit.unwrap_or(0),
        cursor: args.cursor.unwrap_or_default(),
        include_values: args.values,
    };
    let response = client.list(args.prefix, options).await?;
    io.emit(|| json::list(&response, args.values), || human::entries(&response.entries, args.values))?;
    if response.has_more && !io.json {
        io.note(&human::more_hint(&response.next_cursor, false))?;
    }
    Ok(())
}

async fn scan(client: &Client, io: &mut Io<'_>, args: ScanArgs) -> anyhow::Result<()> {
    let mut cursor = args.cursor.unwrap_or_default();
    loop {
        let options =
            ScanOptions { cursor: cursor.clone(), count: args.count.unwrap_or(0), include_values: args.values };
        let page = client.scan(options).await?;
        io.emit(|| json::scan(&page, args.values), || human::entries(&page.entries, args.values))?;
        if page.done {
            return Ok(());
        }
        if !args.all {
            if !io.json {
                io.note(&human::more_hint(&page.next_cursor, true))?;
            }
            return Ok(());
        }
        // A server that does not advance would make `--all` loop forever.
        anyhow::ensure!(
            !page.next_cursor.is_empty() && page.next_cursor != cursor,
            "the server returned a scan page that is not the last without advancing the cursor; \
             this is a server bug, please report it"
        );
        cursor = page.next_cursor;
    }
}

async fn cas(client: &Client, io: &mut Io<'_>, args: CasArgs) -> anyhow::Result<()> {
    let expectation = args.expectation();
    let new_value = value_arg(args.new_value)?;
    let response = client.compare_and_set(args.key.clone(), expectation, new_value, args.ttl).await?;
    io.emit(
        || json::cas(args.key.as_bytes(), &response),
        || {
            if response.applied { "applied\n".to_owned() } else { String::new() }
        },
    )?;
    if !response.applied {
        return Err(Miss::CasNotApplied { version: response.version }.into());
    }
    Ok(())
}

async fn incr(client: &Client, io: &mut Io<'_>, args: IncrArgs) -> anyhow::Result<()> {
    let response = client.increment(args.key.clone(), args.delta(), args.ttl).await?;
    io.emit(|| json::incr(args.key.as_bytes(), &response), || format!("{}\n", response.value))
}

async fn ttl(client: &Client, io: &mut Io<'_>, key: String, secs: u64) -> anyhow::Result<()> {
    let version = client.touch(key.clone(), secs).await?;
    if version.is_some() || io.json {
        io.emit(|| json::touch(key.as_bytes(), version), || "OK\n".to_owned())?;
    }
    match version {
        Some(_) => Ok(()),
        None => Err(Miss::NotFound { key }.into()),
    }
}
