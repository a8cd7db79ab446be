//! # A line server over TCP: split streams, framed lines, cancel-safe reads
//!
//! A TCP connection is a pair of byte streams: `AsyncRead` for what the client sends,
//! `AsyncWrite` for what you send back. `TcpStream::into_split` gives the two directions as
//! separate owned halves, so one task (or one branch of a `select!`) can wait for input while
//! another writes. Bytes are not messages: a client's line may arrive in several reads, or two
//! lines in one. A *codec* does the framing: `LinesCodec` turns the bytes into `String` lines
//! (`FramedRead` makes a `Stream` of them) and lines back into bytes (`FramedWrite` is a
//! `Sink`). Give it a maximum length: without one, a client that never sends `\n` makes the
//! server buffer without end.
//!
//! Waiting for a line *and* something else (here, a server notice) is a `select!`, which
//! drops the branch that lost. Reading must therefore be **cancel-safe**: a half-received line
//! must survive the drop. `FramedRead::next()` and `BufReader::lines()`'s `next_line()` keep
//! the partial line in their own buffer, so they are; `read_line` into a fresh `String` is
//! not (the bytes already read vanish with the dropped future). Every real service reads
//! this way: a chat server, a Redis or SMTP server, a log shipper.
//! (Python: `asyncio.start_server(handle, "127.0.0.1", 0)` with `await reader.readline()`
//! and `writer.write(...)` + `await writer.drain()`.)
//!
//! The protocol: each line a client sends comes back in upper case; every notice published
//! on the server's `broadcast` channel is sent to every connected client as `* NOTICE`; a line
//! longer than `MAX_LINE` bytes gets `error: line too long (max 64 bytes)` and that client is
//! disconnected (the server keeps serving everyone else).
//!
//! ## Your job
//! Implement `handle` (one connection) and `serve` (the accept loop).
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/net/struct.TcpListener.html>
//! - <https://docs.rs/tokio/latest/tokio/net/struct.TcpStream.html#method.into_split>
//! - <https://docs.rs/tokio-util/latest/tokio_util/codec/struct.LinesCodec.html>
//! - <https://docs.rs/tokio-util/latest/tokio_util/codec/struct.FramedRead.html>
//! - <https://docs.rs/tokio-util/latest/tokio_util/codec/struct.FramedWrite.html>
//! - <https://docs.rs/tokio/latest/tokio/macro.select.html#cancellation-safety>
//! - <https://docs.rs/tokio/latest/tokio/io/trait.AsyncBufReadExt.html#method.lines>

use std::io;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};

/// The longest line a client may send, in bytes (without the `\n`).
pub const MAX_LINE: usize = 64;

/// Serves one connection until the client closes it (or sends a line that is too long):
/// each line back in upper case, each notice as `* NOTICE`.
pub async fn handle<R, W>(reader: R, writer: W, mut notices: broadcast::Receiver<String>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut lines = FramedRead::new(reader, LinesCodec::new_with_max_length(MAX_LINE));
    let mut out = FramedWrite::new(writer, LinesCodec::new());
    loop {
        // Both branches are cancel-safe: a partial line stays in `lines`' buffer when a
        // notice wins, and `recv` loses no notice when a line wins.
        let reply = tokio::select! {
            line = lines.next() => match line {
                Some(Ok(line)) => line.to_uppercase(),
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    let _ = out.send(format!("error: line too long (max {MAX_LINE} bytes)")).await;
                    return;
                }
                // The client closed the connection, or it failed: nobody to answer.
                Some(Err(LinesCodecError::Io(_))) | None => return,
            },
            // A lagging or closed notice channel only disables this branch for one turn.
            Ok(notice) = notices.recv() => format!("* {notice}"),
        };
        if out.send(reply).await.is_err() {
            return;
        }
    }
}

/// Accepts connections forever, serving each one in its own task.
pub async fn serve(listener: TcpListener, notices: broadcast::Sender<String>) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let (reader, writer) = stream.into_split();
        tokio::spawn(handle(reader, writer, notices.subscribe()));
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (notices, _) = broadcast::channel(16);
    println!("Serving on {address}. From other terminals, try:");
    println!("    nc {} {}", address.ip(), address.port());
    println!("Type lines; every 10 s each client gets a notice. Ctrl-C stops the server.");
    let ticker = notices.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(10));
        interval.tick().await;
        for n in 1.. {
            interval.tick().await;
            let _ = ticker.send(format!("the server has been up {} s", n * 10));
        }
    });
    serve(listener, notices).await
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/line_server.toml`
    // (each read taken as a line, `read_line` into a fresh `String` inside `select!`, no
    // maximum length, a silent disconnect on a long line, one connection at a time, notices
    // sent to one client only, a handler that never ends).
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines, duplex};
    use tokio::net::TcpStream;
    use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
    use tokio::time::timeout;
    use tokio_test::assert_pending;
    use tokio_test::task::spawn;

    /// Real time, only ever reached by a wrong solution.
    const PATIENCE: Duration = Duration::from_millis(500);

    struct Client {
        lines: Lines<BufReader<OwnedReadHalf>>,
        writer: OwnedWriteHalf,
    }

    impl Client {
        async fn connect(address: std::net::SocketAddr) -> Client {
            let (reader, writer) = TcpStream::connect(address).await.unwrap().into_split();
            Client {
                lines: BufReader::new(reader).lines(),
                writer,
            }
        }

        async fn send(&mut self, bytes: &str) {
            self.writer.write_all(bytes.as_bytes()).await.unwrap();
        }

        /// The next line from the server, or `None` once it closed the connection.
        async fn next(&mut self, waiting_for: &str) -> Option<String> {
            timeout(PATIENCE, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("no answer from the server: expected {waiting_for}"))
                .unwrap()
        }

        async fn expect(&mut self, line: &str) {
            assert_eq!(self.next(&format!("{line:?}")).await.as_deref(), Some(line));
        }
    }

    /// A server on 127.0.0.1, on a port the system picks.
    async fn start() -> (std::net::SocketAddr, broadcast::Sender<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (notices, _) = broadcast::channel(16);
        tokio::spawn(serve(listener, notices.clone()));
        (address, notices)
    }

    #[tokio::test]
    async fn each_line_comes_back_in_upper_case() {
        let (address, _notices) = start().await;
        let mut client = Client::connect(address).await;
        client.send("hello\nasync world\n").await;
        client.expect("HELLO").await;
        client.expect("ASYNC WORLD").await;
        client.send("one line in ").await;
        client.send("three ").await;
        client.send("writes\n").await;
        client.expect("ONE LINE IN THREE WRITES").await;
    }

    #[tokio::test]
    async fn clients_are_served_at_the_same_time() {
        let (address, _notices) = start().await;
        let mut first = Client::connect(address).await;
        first.send("first\n").await;
        first.expect("FIRST").await;
        // `first` stays connected and says nothing more: `second` must not wait for it.
        let mut second = Client::connect(address).await;
        second.send("second\n").await;
        second.expect("SECOND").await;
        first.send("still here\n").await;
        first.expect("STILL HERE").await;
    }

    #[tokio::test]
    async fn every_connected_client_gets_each_notice() {
        let (address, notices) = start().await;
        let mut clients = Vec::new();
        for name in ["ann", "bob", "cid"] {
            let mut client = Client::connect(address).await;
            // An answer proves the connection is served, so it is listening for notices.
            client.send(&format!("{name}\n")).await;
            client.expect(&name.to_uppercase()).await;
            clients.push(client);
        }
        notices.send("maintenance at noon".into()).unwrap();
        for client in &mut clients {
            client.expect("* maintenance at noon").await;
        }
        clients[1].send("after\n").await;
        clients[1].expect("AFTER").await;
    }

    #[tokio::test]
    async fn a_line_of_the_maximum_length_is_served() {
        let (address, _notices) = start().await;
        let mut client = Client::connect(address).await;
        let longest = "x".repeat(MAX_LINE);
        client.send(&format!("{longest}\n")).await;
        client.expect(&longest.to_uppercase()).await;
    }

    #[tokio::test]
    async fn a_line_too_long_gets_an_error_and_only_that_client_is_disconnected() {
        let (address, _notices) = start().await;
        let mut bystander = Client::connect(address).await;
        bystander.send("hi\n").await;
        bystander.expect("HI").await;

        let mut flooder = Client::connect(address).await;
        flooder
            .send(&format!("{}\n", "x".repeat(MAX_LINE + 1)))
            .await;
        flooder.expect("error: line too long (max 64 bytes)").await;
        assert_eq!(
            flooder.next("the end of the connection").await,
            None,
            "after a line too long, the server should close that connection"
        );

        bystander.send("still served\n").await;
        bystander.expect("STILL SERVED").await;
        let mut newcomer = Client::connect(address).await;
        newcomer.send("and me\n").await;
        newcomer.expect("AND ME").await;
    }

    #[tokio::test]
    async fn a_notice_in_the_middle_of_a_line_loses_none_of_it() {
        // An in-memory pipe instead of a socket, so each step happens exactly when polled.
        let (client, server) = duplex(1024);
        let (server_reader, server_writer) = tokio::io::split(server);
        let (client_reader, mut client_writer) = tokio::io::split(client);
        let mut replies = BufReader::new(client_reader).lines();
        let (notices, receiver) = broadcast::channel(16);
        let mut handler = spawn(handle(server_reader, server_writer, receiver));

        client_writer.write_all(b"hel").await.unwrap();
        assert_pending!(
            handler.poll(),
            "half a line: the handler should wait for the rest"
        );
        notices.send("restart at noon".into()).unwrap();
        assert_pending!(handler.poll(), "a notice should not end the connection");
        client_writer.write_all(b"lo\n").await.unwrap();
        assert_pending!(handler.poll());

        let mut next = async || timeout(PATIENCE, replies.next_line()).await.ok()?.ok()?;
        assert_eq!(
            next().await.as_deref(),
            Some("* restart at noon"),
            "the notice arrived first and should be sent at once"
        );
        assert_eq!(
            next().await.as_deref(),
            Some("HELLO"),
            "the notice interrupted the read of \"hel\": a cancel-safe read keeps those \
             bytes (FramedRead::next, Lines::next_line), `read_line` into a new String loses them"
        );
    }

    #[tokio::test]
    async fn the_handler_ends_when_the_client_hangs_up() {
        let (client, server) = duplex(1024);
        let (server_reader, server_writer) = tokio::io::split(server);
        let (_notices, receiver) = broadcast::channel::<String>(16);
        let handler = tokio::spawn(handle(server_reader, server_writer, receiver));
        drop(client);
        timeout(PATIENCE, handler)
            .await
            .expect("the client is gone: `handle` should return")
            .expect("`handle` panicked");
    }

    #[tokio::test]
    async fn the_connection_outlives_the_notice_channel() {
        let (client, server) = duplex(1024);
        let (server_reader, server_writer) = tokio::io::split(server);
        let (client_reader, mut client_writer) = tokio::io::split(client);
        let mut replies = BufReader::new(client_reader).lines();
        let (notices, receiver) = broadcast::channel::<String>(16);
        let handler = tokio::spawn(handle(server_reader, server_writer, receiver));
        drop(notices);
        client_writer.write_all(b"still there?\n").await.unwrap();
        let reply = timeout(PATIENCE, replies.next_line()).await;
        assert!(
            matches!(&reply, Ok(Ok(Some(line))) if line == "STILL THERE?"),
            "no more notices will come, but the client is still connected and should be \
             answered: got {reply:?}"
        );
        assert!(!handler.is_finished());
    }
}
