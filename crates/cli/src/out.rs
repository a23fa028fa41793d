//! Output plumbing: colour decision, and the one path by which every
//! command's output reaches stdout and its write errors become an exit
//! status.
//!
//! Every command writes through [`stdout`] (or hands finished bytes to
//! [`print`]) and passes the result of its writes to [`done`] /
//! [`ignore_broken_pipe`]. A reader that went away (`| head`: EPIPE) is not
//! an error: quiet exit 0. Any other failure to write (a full disk,
//! `> /dev/full`, an I/O error) is exit 4 with a message on stderr, so
//! that a script never mistakes lost output for a result (exit 3 is kept
//! for a missing privilege or kernel feature).

use crate::cli::ColorChoice;
use crate::{FOUND, Fail};
use std::io::{self, BufWriter, IsTerminal, StdoutLock, Write};

/// Output could not be written: exit 4 (README).
pub const OUTPUT_FAILED: u8 = 4;

/// Colour only on a terminal, and never when NO_COLOR is set (non-empty).
pub fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// Buffered stdout for a command's output; pass what writing it returned
/// to [`done`].
pub fn stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(1 << 16, io::stdout().lock())
}

/// The error for output that could not be written (not a closed pipe).
pub fn write_failed(e: &io::Error) -> Fail {
    Fail::Output(format!(
        "could not write the output: {e}; check where standard output goes (a full disk, /dev/full, a closed terminal)"
    ))
}

/// A write error as an exit status: a reader of our output that went away
/// (`| head`) is a quiet exit 0, anything else exit 4.
pub fn ignore_broken_pipe(e: io::Error) -> Result<u8, Fail> {
    if broken_pipe(&e) {
        Ok(FOUND)
    } else {
        Err(write_failed(&e))
    }
}

/// EPIPE, also when wrapped (serde_json reports a failed write as its own
/// error, which callers wrap again in an io::Error).
fn broken_pipe(e: &io::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(j) = c.downcast_ref::<serde_json::Error>() {
            return j.io_error_kind() == Some(io::ErrorKind::BrokenPipe);
        }
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::BrokenPipe {
                return true;
            }
            // An io::Error's source() skips its payload: look at it.
            if let Some(inner) = io.get_ref() {
                cur = Some(inner);
                continue;
            }
        }
        cur = c.source();
    }
    false
}

/// Flush `w` after the writes that gave `written`, and turn the outcome
/// into the command's exit status (`code` when everything was written).
pub fn done(written: io::Result<()>, w: &mut impl Write, code: u8) -> Result<u8, Fail> {
    written
        .and_then(|_| w.flush())
        .map(|_| code)
        .or_else(ignore_broken_pipe)
}

/// Write finished bytes (help, completions, a man page) to stdout.
pub fn print(bytes: &[u8]) -> Result<u8, Fail> {
    let mut w = io::stdout().lock();
    let r = w.write_all(bytes);
    done(r, &mut w, FOUND)
}

/// `--json` / `--jsonl`, the same on every command that prints records
/// (flattened into each command's arguments). What they mean everywhere:
///
/// - `--json`: one JSON document. A list of records (sockets, chains,
///   scenarios) is an array with one record per line; a report (stats,
///   listeners, proc, export, a lab run) is pretty-printed; a command that
///   reports again and again (`listeners --interval`, `top --iterations`)
///   writes each report on a line of its own.
/// - `--jsonl`: JSON lines, one compact object per line: each record of a
///   list or a stream (sockets, chains, events, packets), or the report
///   itself on one line.
///
/// Everything goes through [`list`], [`document`], [`line`] and
/// [`Records`], so that the shapes above hold for every command.
#[derive(clap::Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputArgs {
    /// Output one JSON document (records one per line inside arrays; fields in the README).
    #[arg(long, conflicts_with = "jsonl", help_heading = "Output")]
    pub json: bool,
    /// Output JSON lines: one compact object per record (or per report).
    #[arg(long, help_heading = "Output")]
    pub jsonl: bool,
}

/// What [`OutputArgs`] asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Jsonl,
}

impl OutputArgs {
    pub fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.jsonl {
            Format::Jsonl
        } else {
            Format::Text
        }
    }

    /// JSON of either kind (not text).
    pub fn structured(&self) -> bool {
        self.json || self.jsonl
    }
}

fn json_err(e: serde_json::Error) -> io::Error {
    io::Error::other(e)
}

/// One value as one line of JSON.
pub fn line<T: serde::Serialize + ?Sized>(w: &mut impl Write, v: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *w, v).map_err(json_err)?;
    w.write_all(b"\n")
}

/// A list of records: `--json` one array, a record per line; `--jsonl` a
/// record per line. Text is the caller's: nothing is written for it.
pub fn list<T: serde::Serialize>(
    w: &mut impl Write,
    format: Format,
    items: &[T],
) -> io::Result<()> {
    let mut r = Records::new(format);
    r.open_list(w)?;
    for i in items {
        r.record(w, i)?;
    }
    r.close(w)
}

/// One report: `--json` pretty-printed (on one line when `repeated`: one
/// of several reports in a stream), `--jsonl` on one line.
pub fn document<T: serde::Serialize + ?Sized>(
    w: &mut impl Write,
    format: Format,
    v: &T,
    repeated: bool,
) -> io::Result<()> {
    match format {
        Format::Json if !repeated => {
            serde_json::to_writer_pretty(&mut *w, v).map_err(json_err)?;
            w.write_all(b"\n")
        }
        Format::Json | Format::Jsonl => line(w, v),
        Format::Text => Ok(()),
    }
}

/// Records written as they come: for `--json` inside one document (a bare
/// array, or an object whose fields are arrays of records and, last, plain
/// values), for `--jsonl` one per line. `capture` writes
/// `{"packets":[...],"conversations":[...],"summary":{...}}` with it.
pub struct Records {
    format: Format,
    /// Inside an object (`--json`): whether a field was written.
    object: Option<bool>,
    /// Inside an array (`--json`): whether a record was written.
    array: Option<bool>,
}

impl Records {
    pub fn new(format: Format) -> Records {
        Records {
            format,
            object: None,
            array: None,
        }
    }

    fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// `--json`: a bare array of records follows.
    pub fn open_list(&mut self, w: &mut impl Write) -> io::Result<()> {
        if self.json() {
            w.write_all(b"[")?;
            self.array = Some(false);
        }
        Ok(())
    }

    /// `--json`: the document is an object; `name` is its next field, an
    /// array of the records that follow.
    pub fn field_list(&mut self, w: &mut impl Write, name: &str) -> io::Result<()> {
        if self.json() {
            self.end_array(w)?;
            self.next_field(w, name)?;
            w.write_all(b"[")?;
            self.array = Some(false);
        }
        Ok(())
    }

    /// A plain field of the object (`--json`), or one more line (`--jsonl`).
    pub fn field<T: serde::Serialize + ?Sized>(
        &mut self,
        w: &mut impl Write,
        name: &str,
        v: &T,
    ) -> io::Result<()> {
        match self.format {
            Format::Json => {
                self.end_array(w)?;
                self.next_field(w, name)?;
                serde_json::to_writer(&mut *w, v).map_err(json_err)
            }
            Format::Jsonl => line(w, v),
            Format::Text => Ok(()),
        }
    }

    /// One record: into the open array (`--json`), or a line (`--jsonl`).
    pub fn record<T: serde::Serialize + ?Sized>(
        &mut self,
        w: &mut impl Write,
        v: &T,
    ) -> io::Result<()> {
        match self.format {
            Format::Json => {
                let first = !self.array.replace(true).unwrap_or(false);
                w.write_all(if first { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut *w, v).map_err(json_err)
            }
            Format::Jsonl => line(w, v),
            Format::Text => Ok(()),
        }
    }

    /// End the document (`--json`: close what is open).
    pub fn close(&mut self, w: &mut impl Write) -> io::Result<()> {
        if self.json() {
            self.end_array(w)?;
            if self.object.take().is_some() {
                w.write_all(b"}")?;
            }
            w.write_all(b"\n")?;
        }
        Ok(())
    }

    fn next_field(&mut self, w: &mut impl Write, name: &str) -> io::Result<()> {
        match self.object.replace(true) {
            None => w.write_all(b"{")?,
            Some(true) => w.write_all(b",")?,
            Some(false) => {}
        }
        serde_json::to_writer(&mut *w, name).map_err(json_err)?;
        w.write_all(b":")
    }

    fn end_array(&mut self, w: &mut impl Write) -> io::Result<()> {
        match self.array.take() {
            Some(true) => w.write_all(b"\n]"),
            Some(false) => w.write_all(b"]"),
            None => Ok(()),
        }
    }
}

/// Stdout written by a thread of its own, for the long-running commands:
/// they must stop within a second of SIGINT/SIGTERM whatever stdout does,
/// and a write(2) to a pipe nobody reads blocks for ever (a signal does not
/// end it: the write is restarted). The command writes into this (bytes
/// are handed over at each [`Write::flush`] and every 64 KiB); the thread
/// writes them to fd 1. At most [`Background::QUEUE`] bytes wait: beyond
/// that the command waits for the reader (back-pressure, as with a plain
/// write) until it is told to stop. Once stopping, it waits only while the
/// output makes progress, and gives up after [`Background::PATIENCE`]
/// without any. [`Background::item`] marks the end of an item (an event)
/// so that those never written can be counted.
pub struct Background {
    buf: Vec<u8>,
    items: u64,
    shared: std::sync::Arc<Shared>,
    stopping: &'static std::sync::atomic::AtomicBool,
    /// When the command stops by itself (--duration), if it does.
    deadline: Option<std::time::Instant>,
    /// Items dropped because the output made no progress while stopping.
    dropped: u64,
}

struct Shared {
    q: std::sync::Mutex<Queue>,
    cv: std::sync::Condvar,
}

struct Queue {
    chunks: std::collections::VecDeque<(Vec<u8>, u64)>,
    bytes: usize,
    /// Items of the chunk being written.
    writing: u64,
    closed: bool,
    error: Option<io::Error>,
    /// Items that were not written because a write failed.
    failed: u64,
    progress: std::time::Instant,
}

/// What became of the output (see [`Background::finish`]).
#[derive(Debug)]
pub struct Finished {
    /// Items that never reached stdout.
    pub unwritten: u64,
    /// Everything handed over was written.
    pub complete: bool,
    /// The write error that ended the output, if any.
    pub error: Option<io::Error>,
}

impl Background {
    /// Bytes that may wait for the writer.
    pub const QUEUE: usize = 256 << 10;
    /// How long, once stopping, to wait for output that makes no progress.
    pub const PATIENCE: std::time::Duration = std::time::Duration::from_millis(400);
    const CHUNK: usize = 64 << 10;

    /// Start the writer thread. `stopping` is set (by a signal handler)
    /// when the command is told to stop.
    pub fn spawn(stopping: &'static std::sync::atomic::AtomicBool) -> io::Result<Background> {
        let shared = std::sync::Arc::new(Shared {
            q: std::sync::Mutex::new(Queue {
                chunks: Default::default(),
                bytes: 0,
                writing: 0,
                closed: false,
                error: None,
                failed: 0,
                progress: std::time::Instant::now(),
            }),
            cv: std::sync::Condvar::new(),
        });
        let s = shared.clone();
        std::thread::Builder::new()
            .name("sockscope-out".into())
            .spawn(move || writer(&s))?;
        Ok(Background {
            buf: Vec::with_capacity(Self::CHUNK),
            items: 0,
            shared,
            stopping,
            deadline: None,
            dropped: 0,
        })
    }

    /// The command also stops at `deadline` (--duration): from then on,
    /// as when told to stop, the output is waited for only while it makes
    /// progress.
    pub fn stop_at(&mut self, deadline: Option<std::time::Instant>) {
        self.deadline = deadline;
    }

    /// One more item (an event) ends in what was written so far.
    pub fn item(&mut self) {
        self.items += 1;
    }

    /// `n` more items end in what was written so far.
    pub fn items(&mut self, n: u64) {
        self.items += n;
    }

    /// Stopping, and output has already been dropped for want of
    /// progress: what comes next would be dropped too, so a caller may
    /// count it with [`Background::skip`] without formatting it.
    pub fn abandoned(&self) -> bool {
        self.dropped > 0 && self.stopping()
    }

    /// Count an item as not written, without writing it.
    pub fn skip(&mut self) {
        self.dropped += 1;
    }

    /// A write failed: the output is over.
    pub fn failed(&self) -> bool {
        lock(&self.shared).error.is_some()
    }

    /// Items that will not be written (dropped so far, or lost to a
    /// failed write).
    pub fn unwritten(&self) -> u64 {
        self.dropped + lock(&self.shared).failed
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
            || self
                .deadline
                .is_some_and(|d| std::time::Instant::now() >= d)
    }

    /// Hand the buffer to the writer thread.
    fn hand_over(&mut self) -> io::Result<()> {
        if self.buf.is_empty() && self.items == 0 {
            return Ok(());
        }
        let mut q = lock(&self.shared);
        loop {
            if let Some(e) = &q.error {
                return Err(io::Error::new(e.kind(), e.to_string()));
            }
            if q.bytes < Self::QUEUE {
                break;
            }
            if self.stopping() && q.progress.elapsed() >= Self::PATIENCE {
                // The reader is gone for good as far as we can tell.
                self.dropped += self.items;
                self.items = 0;
                self.buf.clear();
                return Ok(());
            }
            q = self
                .shared
                .cv
                .wait_timeout(q, std::time::Duration::from_millis(20))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(Self::CHUNK));
        if q.chunks.is_empty() && q.writing == 0 {
            // The writer was idle: its patience starts now.
            q.progress = std::time::Instant::now();
        }
        q.bytes += chunk.len();
        q.chunks.push_back((chunk, std::mem::take(&mut self.items)));
        self.shared.cv.notify_all();
        Ok(())
    }

    /// Hand over what is left and wait for the writer: until everything is
    /// written, a write fails, or (when stopping) the output made no
    /// progress for [`Background::PATIENCE`]. The thread is left behind
    /// if it is still blocked; the process exits around it.
    pub fn finish(mut self) -> Finished {
        let handed = self.hand_over();
        let mut q = lock(&self.shared);
        q.closed = true;
        self.shared.cv.notify_all();
        loop {
            let idle = q.chunks.is_empty() && q.writing == 0;
            if idle || q.error.is_some() {
                break;
            }
            if self.stopping() && q.progress.elapsed() >= Self::PATIENCE {
                break;
            }
            q = self
                .shared
                .cv
                .wait_timeout(q, std::time::Duration::from_millis(20))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let waiting: u64 = q.chunks.iter().map(|c| c.1).sum::<u64>() + q.writing;
        let error = match (q.error.take(), handed) {
            (Some(e), _) | (None, Err(e)) => Some(e),
            (None, Ok(())) => None,
        };
        Finished {
            unwritten: self.dropped + q.failed + waiting,
            complete: waiting == 0 && error.is_none() && self.dropped == 0 && q.failed == 0,
            error,
        }
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Queue> {
    s.q.lock().unwrap_or_else(|e| e.into_inner())
}

impl Write for Background {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= Self::CHUNK {
            self.hand_over()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}

/// The writer thread: fd 1, written directly (not through std's Stdout,
/// whose lock it would hold while blocked).
fn writer(s: &Shared) {
    use std::os::fd::AsFd;
    // A duplicate of fd 1 (the same open file), written without std's
    // Stdout lock; if none can be made, the output fails as a write would.
    let mut fd1 = match io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => std::fs::File::from(fd),
        Err(e) => {
            let mut q = lock(s);
            q.error = Some(e);
            s.cv.notify_all();
            return;
        }
    };
    loop {
        let (chunk, items) = {
            let mut q = lock(s);
            loop {
                if let Some(c) = q.chunks.pop_front() {
                    q.writing = c.1;
                    break c;
                }
                if q.closed {
                    return;
                }
                q = s.cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let r = fd1.write_all(&chunk);
        let mut q = lock(s);
        q.writing = 0;
        q.bytes -= chunk.len();
        q.progress = std::time::Instant::now();
        if let Err(e) = r {
            let rest: u64 = q.chunks.drain(..).map(|c| c.1).sum();
            q.failed += items + rest;
            q.bytes = 0;
            q.error = Some(e);
            s.cv.notify_all();
            return;
        }
        s.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct WriteFails(io::ErrorKind);

    impl Write for WriteFails {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(self.0))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn closed_pipe_is_quiet_success_other_errors_exit_4() {
        assert_eq!(
            ignore_broken_pipe(io::Error::from(io::ErrorKind::BrokenPipe)).unwrap(),
            FOUND
        );
        // serde_json's error for a failed write, wrapped as callers do
        let mut w = WriteFails(io::ErrorKind::BrokenPipe);
        let wrapped = io::Error::other(serde_json::to_writer(&mut w, &[1]).unwrap_err());
        assert_eq!(ignore_broken_pipe(wrapped).unwrap(), FOUND);
        let mut w = WriteFails(io::ErrorKind::StorageFull);
        let wrapped = io::Error::other(serde_json::to_writer(&mut w, &[1]).unwrap_err());
        assert_eq!(ignore_broken_pipe(wrapped).unwrap_err().code(), 4);
        let f = ignore_broken_pipe(io::Error::from_raw_os_error(libc::ENOSPC)).unwrap_err();
        assert_eq!(f.code(), 4);
        assert!(
            f.message().contains("could not write the output"),
            "{}",
            f.message()
        );
    }

    fn written(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut v = Vec::new();
        f(&mut v).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn one_shape_per_format() {
        let items = [serde_json::json!({"a": 1}), serde_json::json!({"a": 2})];
        assert_eq!(
            written(|w| list(w, Format::Json, &items)),
            "[\n{\"a\":1},\n{\"a\":2}\n]\n"
        );
        assert_eq!(written(|w| list(w, Format::Json, &[] as &[u8])), "[]\n");
        assert_eq!(
            written(|w| list(w, Format::Jsonl, &items)),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(written(|w| list(w, Format::Text, &items)), "");
        let doc = serde_json::json!({"schema": "x/1", "n": [1]});
        let pretty = written(|w| document(w, Format::Json, &doc, false));
        assert!(pretty.contains("\n  \"n\""), "{pretty}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
            doc
        );
        let one = "{\"n\":[1],\"schema\":\"x/1\"}\n";
        assert_eq!(written(|w| document(w, Format::Json, &doc, true)), one);
        assert_eq!(written(|w| document(w, Format::Jsonl, &doc, false)), one);
    }

    #[test]
    fn records_stream_into_one_document_or_lines() {
        let write = |f: Format| {
            written(|w| {
                let mut r = Records::new(f);
                r.field_list(w, "packets")?;
                r.record(w, &1)?;
                r.record(w, &2)?;
                r.field_list(w, "conversations")?;
                r.field(w, "summary", &serde_json::json!({"kind": "summary"}))?;
                r.close(w)
            })
        };
        let doc = write(Format::Json);
        assert_eq!(
            doc,
            "{\"packets\":[\n1,\n2\n],\"conversations\":[],\"summary\":{\"kind\":\"summary\"}}\n"
        );
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["packets"], serde_json::json!([1, 2]));
        assert_eq!(write(Format::Jsonl), "1\n2\n{\"kind\":\"summary\"}\n");
        assert_eq!(write(Format::Text), "");
    }
}
