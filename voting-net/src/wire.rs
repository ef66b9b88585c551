//! Framing: reading newline-terminated lines with a length bound from a stream
//! whose reads may time out, and writing one JSON value per line.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use openssl::ssl::SslStream;

use serde::Serialize;

/// What one attempt to read a line produced.
#[derive(Debug)]
pub(crate) enum ReadLine {
    /// A complete line, without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// The read timed out (or would block) before a whole line arrived; what was
    /// read so far is kept for the next attempt.
    Pending,
    /// The peer closed the connection.
    Eof,
    /// The line grew past the limit.
    TooLong,
}

/// A line reader that tolerates timeouts mid-line and never buffers more than
/// `max` bytes plus one read chunk.
#[derive(Debug)]
pub(crate) struct LineReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a newline.
    scanned: usize,
    max: usize,
}

const CHUNK: usize = 8 * 1024;

impl LineReader {
    pub(crate) fn new(max: usize) -> Self {
        LineReader {
            buf: Vec::new(),
            scanned: 0,
            max,
        }
    }

    /// Whether a complete line is already buffered (no read needed).
    pub(crate) fn has_line(&self) -> bool {
        self.buf.contains(&b'\n')
    }

    /// Returns the next line, reading from `r` at most once.
    pub(crate) fn read_line<R: Read>(&mut self, r: &mut R) -> io::Result<ReadLine> {
        loop {
            if let Some(pos) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + pos;
                if end > self.max {
                    return Ok(ReadLine::TooLong);
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.scanned = 0;
                return Ok(ReadLine::Line(line));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                return Ok(ReadLine::TooLong);
            }
            let mut chunk = [0u8; CHUNK];
            match r.read(&mut chunk) {
                Ok(0) => return Ok(ReadLine::Eof),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(ReadLine::Pending)
                }
                Err(e) => return Err(e),
            }
            // One read per call, so callers regain control between reads.
            if !self.has_line() {
                return Ok(ReadLine::Pending);
            }
        }
    }
}

/// Closes a server-side TLS connection so that the client can read what was
/// last written to it.
///
/// Sends TLS close_notify, half-closes TCP, then reads and discards whatever the
/// client still sends (for at most `linger`, 64 KiB). Closing outright while a
/// request is in flight makes the kernel answer it with a reset, and a reset
/// discards the client's unread data: it would see "connection reset" instead
/// of the reason it was closed.
pub(crate) fn close_gracefully(mut tls: SslStream<TcpStream>, linger: Duration) {
    let _ = tls.shutdown();
    let tcp = tls.get_ref();
    let _ = tcp.shutdown(Shutdown::Write);
    let _ = tcp.set_nonblocking(false);
    let deadline = Instant::now() + linger;
    let mut budget = 64 * 1024usize;
    let mut buf = [0u8; 4096];
    let mut raw = tcp;
    while budget > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || raw.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match raw.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => budget = budget.saturating_sub(n),
        }
    }
}

/// Writes `value` as one JSON line and flushes.
pub(crate) fn write_json_line<W: Write, T: Serialize>(w: &mut W, value: &T) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(value).map_err(io::Error::other)?;
    bytes.push(b'\n');
    w.write_all(&bytes)?;
    w.flush()
}

/// Writes pre-encoded bytes as one line and flushes.
pub(crate) fn write_raw_line<W: Write>(w: &mut W, line: &[u8]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line);
    bytes.push(b'\n');
    w.write_all(&bytes)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its data in fixed pieces, then times out once
    /// between pieces, like a slow network.
    struct Trickle {
        pieces: Vec<Vec<u8>>,
        timeout_next: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.timeout_next {
                self.timeout_next = false;
                return Err(io::Error::new(ErrorKind::WouldBlock, "slow"));
            }
            self.timeout_next = true;
            if self.pieces.is_empty() {
                return Ok(0);
            }
            let piece = self.pieces.remove(0);
            out[..piece.len()].copy_from_slice(&piece);
            Ok(piece.len())
        }
    }

    fn collect(reader: &mut LineReader, src: &mut Trickle) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            match reader.read_line(src).expect("no io error") {
                ReadLine::Line(l) => lines.push(String::from_utf8(l).expect("utf8")),
                ReadLine::Pending => continue,
                ReadLine::Eof => return lines,
                ReadLine::TooLong => panic!("unexpected TooLong"),
            }
        }
    }

    #[test]
    fn lines_split_across_reads_and_timeouts_come_out_whole() {
        let mut src = Trickle {
            pieces: vec![
                b"{\"a\"".to_vec(),
                b":1}\r\n{\"b\":2}\n{".to_vec(),
                b"}\n".to_vec(),
            ],
            timeout_next: false,
        };
        let lines = collect(&mut LineReader::new(100), &mut src);
        assert_eq!(lines, vec!["{\"a\":1}", "{\"b\":2}", "{}"]);
    }

    #[test]
    fn a_line_over_the_limit_is_refused_without_buffering_it_all() {
        let mut src = Trickle {
            pieces: vec![vec![b'x'; 6000], vec![b'x'; 6000], b"\n".to_vec()],
            timeout_next: false,
        };
        let mut reader = LineReader::new(10_000);
        let outcome = loop {
            match reader.read_line(&mut src).expect("no io error") {
                ReadLine::Pending => continue,
                other => break other,
            }
        };
        assert!(matches!(outcome, ReadLine::TooLong), "got {outcome:?}");
        assert!(reader.buf.len() <= 10_000 + CHUNK);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut data = vec![b'y'; 50];
        data.push(b'\n');
        let mut src = Trickle {
            pieces: vec![data],
            timeout_next: false,
        };
        let lines = collect(&mut LineReader::new(50), &mut src);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), 50);
    }
}
