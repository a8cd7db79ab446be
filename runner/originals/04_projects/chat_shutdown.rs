//! # Chat server, step 4: a graceful shutdown
//!
//! *This step adds:* a way to stop. Step 3's server is here, solved. Killing a server drops
//! its clients mid-sentence: they see a reset, not a goodbye, and whatever was queued for them
//! is lost. A graceful shutdown, when asked (Ctrl-C, a deploy), does it in order:
//! 1. **Stop accepting** at once: drop the listener, so a new client is refused instead of
//!    welcomed into a closing room.
//! 2. **Tell every client**: `* server shutting down` is the last line each one gets, after
//!    what was already queued for it; then its connection closes. No `left` notices: everyone
//!    is leaving.
//! 3. **Wait, with a deadline**: `serve` returns once every connection is closed, or `grace`
//!    after the shutdown began, closing those still open. A client that does not read must not
//!    hold the server for ever.
//!
//! The tools: a `CancellationToken` (tokio-util) that every task watches in its `select!`
//! (`token.cancelled()` is cancel-safe and can be awaited by any number of tasks), a `JoinSet`
//! that owns the connection tasks (reaped as they end while serving; `shutdown()` aborts
//! those left at the deadline), and an `AbortOnDropHandle` for each client's writer task, so
//! aborting a connection aborts its writer too and nothing outlives `serve`.
//! (Python: `server.close()` and `await server.wait_closed()`, each handler catching
//! `asyncio.CancelledError`, `asyncio.wait_for(..., grace)` around the rest.)
//!
//! ## Your job
//! Rewrite `serve` with the three steps above, and make `connection` watch the token: on
//! shutdown it leaves the room quietly, queues the goodbye and lets its writer finish. Then
//! play: `cargo run -p exercises --bin chat_shutdown`, `nc 127.0.0.1 PORT` in two terminals,
//! and Ctrl-C the server.
//!
//! ## Read
//! - <https://tokio.rs/tokio/topics/shutdown>
//! - <https://docs.rs/tokio-util/latest/tokio_util/sync/struct.CancellationToken.html>
//! - <https://docs.rs/tokio/latest/tokio/task/struct.JoinSet.html>
//! - <https://docs.rs/tokio-util/latest/tokio_util/task/struct.AbortOnDropHandle.html>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.timeout.html>

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinSet;
use tokio_util::codec::{
    AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead, FramedWrite, LinesCodec,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// The longest line a client may send, in bytes (without the `\n`).
pub const MAX_LINE: usize = 256;
/// How many lines may wait for a client that reads slowly; beyond that it misses messages.
pub const OUTBOX: usize = 32;
/// Each client's last line when the server shuts down.
pub const GOODBYE: &str = "* server shutting down";

/// Who is connected: each client's name and outbox, by connection number.
type Room = Arc<Mutex<HashMap<u64, Client>>>;

struct Client {
    name: String,
    outbox: mpsc::Sender<String>,
}

/// What a client's line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'a> {
    Say(&'a str),
    Nick(&'a str),
    List,
    Msg { to: &'a str, text: &'a str },
    Quit,
}

/// What `line` asks for, or the error line to answer it with.
pub fn parse(line: &str) -> Result<Input<'_>, String> {
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Input::Say(line));
    };
    let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
    let rest = rest.trim();
    match verb {
        "nick" if is_valid_nick(rest) => Ok(Input::Nick(rest)),
        "nick" => Err("error: usage: /nick NAME (1 to 16 letters, digits, - or _)".to_owned()),
        "list" => Ok(Input::List),
        "msg" => match rest.split_once(' ') {
            Some((to, text)) if !text.trim().is_empty() => Ok(Input::Msg {
                to,
                text: text.trim(),
            }),
            _ => Err("error: usage: /msg NAME text".to_owned()),
        },
        "quit" => Ok(Input::Quit),
        _ => Err(format!(
            "error: unknown command /{verb} (try /nick, /list, /msg, /quit)"
        )),
    }
}

fn is_valid_nick(nick: &str) -> bool {
    (1..=16).contains(&nick.len())
        && nick
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Does what `input` asks on behalf of client `id`, known as `name`; answers go to its own
/// `outbox`. Returns `false` when the client is to be disconnected.
fn act(
    room: &Room,
    id: u64,
    name: &mut String,
    outbox: &mpsc::Sender<String>,
    input: Input,
) -> bool {
    let answer = |line: String| {
        let _ = outbox.try_send(line);
    };
    match input {
        Input::Say(text) => broadcast(room, id, &format!("{name}: {text}")),
        Input::Nick(new) => {
            let mut clients = room.lock().expect("a thread panicked holding the room");
            // Checked and taken under one lock: nobody can take it in between.
            if clients.values().any(|client| client.name == new) {
                answer(format!("error: nick {new} is in use"));
                return true;
            }
            if let Some(me) = clients.get_mut(&id) {
                me.name = new.to_owned();
            }
            drop(clients);
            let old = std::mem::replace(name, new.to_owned());
            answer(format!("* you are now {new}"));
            broadcast(room, id, &format!("* {old} is now {new}"));
        }
        Input::List => {
            let clients = room.lock().expect("a thread panicked holding the room");
            let mut names: Vec<&str> = clients
                .values()
                .map(|client| client.name.as_str())
                .collect();
            names.sort_unstable();
            answer(format!("* in the room: {}", names.join(", ")));
        }
        Input::Msg { to, text } => {
            let clients = room.lock().expect("a thread panicked holding the room");
            match clients.values().find(|client| client.name == to) {
                Some(client) => {
                    let _ = client.outbox.try_send(format!("{name} (private): {text}"));
                }
                None => answer(format!("error: no one called {to}")),
            }
        }
        Input::Quit => {
            answer("* bye".to_owned());
            return false;
        }
    }
    true
}

/// Serves clients, each in its own task, until `shutdown` is cancelled; then stops accepting,
/// says goodbye to everyone and returns once every connection is closed, or after `grace`,
/// closing those still open.
pub async fn serve(
    listener: TcpListener,
    shutdown: CancellationToken,
    grace: Duration,
) -> io::Result<()> {
    // TODO: serve as step 3 did (accept, a task per client), until `shutdown` is cancelled.
    // Then stop accepting at once, and wait for every connection to close, at most `grace`;
    // abort those still open.
    let _ = (
        listener,
        shutdown,
        grace,
        connection,
        JoinSet::<()>::new,
        Room::default,
    );
    todo!()
}

/// Puts `message` in the outbox of every client but `from`, without ever waiting: a full
/// outbox misses it, a closed one (its client is gone) leaves the room.
fn broadcast(room: &Room, from: u64, message: &str) {
    let mut clients = room.lock().expect("a thread panicked holding the room");
    clients.retain(|&id, client| {
        id == from
            || match client.outbox.try_send(message.to_owned()) {
                Ok(()) | Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Closed(_)) => false,
            }
    });
}

/// One client, from welcome to goodbye (its own, or the server's).
async fn connection(stream: TcpStream, id: u64, room: Room, shutdown: CancellationToken) {
    let mut name = format!("guest{id}");
    let (reader, writer) = stream.into_split();
    let (outbox, inbox) = mpsc::channel(OUTBOX);
    // The writer ends (and closes the socket) once every `Sender` of the outbox is gone.
    // TODO: if this task is aborted, its writer must be aborted too.
    let writer = tokio::spawn(write_lines(writer, inbox));
    let _ = AbortOnDropHandle::<()>::new;
    let _ = outbox.try_send(format!("* welcome, you are {name}"));
    let client = Client {
        name: name.clone(),
        outbox: outbox.clone(),
    };
    room.lock()
        .expect("a thread panicked holding the room")
        .insert(id, client);
    broadcast(&room, id, &format!("* {name} joined"));

    let codec = AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), MAX_LINE);
    let mut lines = FramedRead::new(reader, codec);
    // TODO: stop reading when `shutdown` is cancelled too, and remember why you stopped.
    let _ = &shutdown;
    let shutting_down = false;
    while let Some(line) = lines.next().await {
        if !answer_line(&room, id, &mut name, &outbox, line) {
            break;
        }
    }
    // Out of the room first: nobody's broadcast reaches this client any more.
    room.lock()
        .expect("a thread panicked holding the room")
        .remove(&id);
    if shutting_down {
        // TODO: the goodbye, instead of a `left` notice.
    } else {
        broadcast(&room, id, &format!("* {name} left"));
    }
    // The last `Sender`: the writer sends what is queued, then closes the connection.
    drop(outbox);
    let _ = writer.await;
}

/// Answers one line (or a reading error); `false` when the client is to be disconnected.
fn answer_line(
    room: &Room,
    id: u64,
    name: &mut String,
    outbox: &mpsc::Sender<String>,
    line: Result<tokio_util::bytes::Bytes, AnyDelimiterCodecError>,
) -> bool {
    match line {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => match parse(text.trim_end_matches('\r')) {
                Ok(input) => act(room, id, name, outbox, input),
                Err(error) => {
                    let _ = outbox.try_send(error);
                    true
                }
            },
            Err(_) => {
                let _ = outbox.try_send("error: not valid UTF-8".to_owned());
                true
            }
        },
        Err(AnyDelimiterCodecError::MaxChunkLengthExceeded) => {
            let _ = outbox.try_send(format!("error: line too long (max {MAX_LINE} bytes)"));
            false
        }
        Err(AnyDelimiterCodecError::Io(_)) => false,
    }
}

/// The only code that writes to this client's socket.
async fn write_lines(writer: OwnedWriteHalf, mut inbox: mpsc::Receiver<String>) {
    let mut out = FramedWrite::new(writer, LinesCodec::new());
    while let Some(line) = inbox.recv().await {
        if out.send(line).await.is_err() {
            return;
        }
    }
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    println!("Chat server on {address}. In two or more other terminals:");
    println!("    nc {} {}", address.ip(), address.port());
    println!("and type. Ctrl-C here shuts the server down gracefully (5 s of grace).");
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            trigger.cancel();
        }
    });
    serve(listener, shutdown, Duration::from_secs(5)).await?;
    println!("Every client told, every connection closed.");
    Ok(())
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/chat_shutdown.toml`
    // (a shutdown nobody is told about, the goodbye sent to the room instead of each client,
    // `left` notices while closing, a listener that still accepts, no deadline, no waiting at
    // all, a writer aborted before it sent the goodbye, writers left running after `serve`,
    // an accept loop that never sees the token, a client kept in the room while leaving).
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
    use tokio::net::TcpSocket;
    use tokio::net::tcp::OwnedReadHalf;
    use tokio::task::JoinHandle;
    use tokio::time::{Instant, sleep, timeout};

    /// Real time, only ever reached by a wrong solution (on the paused clock: "nothing more
    /// will come").
    const PATIENCE: Duration = Duration::from_millis(1000);

    struct Client {
        lines: Lines<BufReader<OwnedReadHalf>>,
        writer: OwnedWriteHalf,
    }

    impl Client {
        async fn connect(address: SocketAddr) -> Client {
            let (reader, writer) = TcpStream::connect(address).await.unwrap().into_split();
            Client {
                lines: BufReader::new(reader).lines(),
                writer,
            }
        }

        async fn say(&mut self, text: &str) {
            self.writer
                .write_all(format!("{text}\n").as_bytes())
                .await
                .unwrap();
        }

        async fn next(&mut self, waiting_for: &str) -> Option<String> {
            timeout(PATIENCE, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("nothing came from the server: expected {waiting_for}"))
                .unwrap()
        }

        async fn expect(&mut self, line: &str) {
            assert_eq!(self.next(&format!("{line:?}")).await.as_deref(), Some(line));
        }

        /// The goodbye, then the end of the connection.
        async fn expect_goodbye(&mut self) {
            self.expect(GOODBYE).await;
            assert_eq!(
                self.next("the end of the connection").await,
                None,
                "after the goodbye the server should close the connection"
            );
        }
    }

    struct Server {
        address: SocketAddr,
        shutdown: CancellationToken,
        serving: JoinHandle<io::Result<()>>,
    }

    /// A server on `listener`; a shutdown has `grace` to close every connection.
    fn start_on(listener: TcpListener, grace: Duration) -> Server {
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(serve(listener, shutdown.clone(), grace));
        Server {
            address,
            shutdown,
            serving,
        }
    }

    async fn start(grace: Duration) -> Server {
        start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), grace)
    }

    /// Waits for `serve` to return after a shutdown (a minute of the paused clock at most:
    /// "never").
    async fn returns(serving: JoinHandle<io::Result<()>>) {
        timeout(Duration::from_secs(60), serving)
            .await
            .expect(
                "serve never returned after the shutdown: does its accept loop watch the token?",
            )
            .expect("serve panicked")
            .expect("serve returned an error");
    }

    /// Connects `count` clients, each one welcomed and announced to those before it.
    async fn room_of(address: SocketAddr, count: usize) -> Vec<Client> {
        let mut clients: Vec<Client> = Vec::new();
        for n in 1..=count {
            let mut client = Client::connect(address).await;
            client.expect(&format!("* welcome, you are guest{n}")).await;
            for earlier in &mut clients {
                earlier.expect(&format!("* guest{n} joined")).await;
            }
            clients.push(client);
        }
        clients
    }

    /// A server with two reading clients (guest1 talks, guest3 listens) and guest2, which
    /// never reads: after the talker's flood its writer is stuck on a full socket.
    async fn crowded(grace: Duration) -> (Server, Client, Client, TcpStream) {
        // Small socket buffers, so the silent client's socket fills after a few kilobytes.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let server = start_on(socket.listen(16).unwrap(), grace);
        let mut talker = Client::connect(server.address).await;
        talker.expect("* welcome, you are guest1").await;
        let silent = TcpSocket::new_v4().unwrap();
        silent.set_recv_buffer_size(4096).unwrap();
        let silent = silent.connect(server.address).await.unwrap();
        talker.expect("* guest2 joined").await;
        let mut listener = Client::connect(server.address).await;
        listener.expect("* welcome, you are guest3").await;
        talker.expect("* guest3 joined").await;
        let line = "x".repeat(200);
        for _ in 0..300 {
            talker.say(&line).await;
            listener.next("the talker's line").await;
        }
        (server, talker, listener, silent)
    }

    #[tokio::test(start_paused = true)]
    async fn the_room_works_as_in_step_3() {
        let server = start(Duration::from_secs(5)).await;
        let mut clients = room_of(server.address, 3).await;
        clients[0].say("hello all").await;
        clients[1].expect("guest1: hello all").await;
        clients[2].expect("guest1: hello all").await;
        clients[1].say("/quit").await;
        clients[1].expect("* bye").await;
        clients[0].expect("* guest2 left").await;
        clients[2].expect("* guest2 left").await;
    }

    #[tokio::test(start_paused = true)]
    async fn every_client_gets_the_goodbye_last_then_its_connection_closes() {
        let server = start(Duration::from_secs(5)).await;
        let mut clients = room_of(server.address, 3).await;
        clients[0].say("last words").await;
        clients[1].expect("guest1: last words").await;
        clients[2].expect("guest1: last words").await;
        let start = Instant::now();
        server.shutdown.cancel();
        for client in &mut clients {
            // No `* guestN left` first: everyone is leaving.
            client.expect_goodbye().await;
        }
        returns(server.serving).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "everyone reads: serve should return as soon as the connections are closed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_client_is_refused_as_soon_as_the_shutdown_begins() {
        let (server, _talker, _listener, _silent) = crowded(Duration::from_secs(10)).await;
        server.shutdown.cancel();
        // The paused clock moves only once every task is idle: the server has reacted.
        sleep(Duration::from_millis(1)).await;
        assert!(
            !server.serving.is_finished(),
            "a client that does not read holds the server for the grace period"
        );
        assert!(
            TcpStream::connect(server.address).await.is_err(),
            "the listener should be closed as soon as the shutdown begins"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_does_not_read_holds_the_server_only_for_the_grace() {
        let grace = Duration::from_secs(3);
        let (server, mut talker, mut listener, mut silent) = crowded(grace).await;
        let start = Instant::now();
        server.shutdown.cancel();
        talker.expect_goodbye().await;
        listener.expect_goodbye().await;
        returns(server.serving).await;
        assert_eq!(
            start.elapsed(),
            grace,
            "serve should return exactly when the grace runs out"
        );
        // Its connection was closed: what was in the socket's buffers, then the end.
        let mut rest = Vec::new();
        let closed = timeout(PATIENCE, silent.read_to_end(&mut rest)).await;
        assert!(
            closed.is_ok(),
            "the silent client's connection is still open after serve returned"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_the_server_started_outlives_serve() {
        let (server, _talker, _listener, _silent) = crowded(Duration::from_secs(3)).await;
        server.shutdown.cancel();
        returns(server.serving).await;
        // Aborted tasks are dropped when the runtime next runs them.
        sleep(Duration::from_millis(1)).await;
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        assert_eq!(
            alive, 0,
            "{alive} task(s) of the server still alive after serve returned (a writer, a \
             connection?)"
        );
    }
}
