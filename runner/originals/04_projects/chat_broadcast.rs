//! # Chat server, step 1: broadcast, join and leave notices, a bounded outbox per client
//!
//! A chat room over TCP: every line a client sends goes to every other client as
//! `NAME: text`; a newcomer is greeted with `* welcome, you are NAME` and the others are told
//! `* NAME joined`, and when a client leaves, `* NAME left`. Clients are named `guest1`,
//! `guest2`… in the order they connect. This is the shape of every fan-out service: chat,
//! live dashboards, game lobbies, pub/sub gateways.
//!
//! The trap is the slow client. Writing to a socket waits when the peer does not read (its
//! buffers are full); a broadcast that awaits each client's socket in turn lets one stalled
//! phone freeze the whole room. So each client gets a **bounded outbox** (an `mpsc` channel)
//! and a **writer task** that alone writes to its socket. A broadcast only `try_send`s into
//! outboxes, which never waits. Policy when an outbox is full: that client misses the message
//! (the others get theirs at once); when an outbox is closed, the client has gone and leaves
//! the room. The room itself (who is connected, and their outboxes) sits behind a
//! `std::sync::Mutex`, held only while pushing into channels, never across an `.await`.
//!
//! Bad input never kills the server: bytes that are not UTF-8 get `error: not valid UTF-8`
//! (the client stays), a line longer than `MAX_LINE` bytes gets
//! `error: line too long (max 256 bytes)` and that client is disconnected.
//! (Python: `asyncio.start_server` with one `asyncio.Queue(maxsize=n)` and one writer task per
//! client, `queue.put_nowait` to broadcast.)
//!
//! ## Your job
//! Implement `broadcast` and `connection` (`serve` and the writer task are done). Then play:
//! `cargo run -p exercises --bin chat_broadcast` prints the port; `nc 127.0.0.1 PORT` in two
//! other terminals.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/sync/mpsc/struct.Sender.html#method.try_send>
//! - <https://docs.rs/tokio/latest/tokio/net/struct.TcpStream.html#method.into_split>
//! - <https://docs.rs/tokio-util/latest/tokio_util/codec/struct.AnyDelimiterCodec.html>
//! - <https://docs.rs/tokio-util/latest/tokio_util/codec/struct.FramedWrite.html>
//! - <https://tokio.rs/tokio/tutorial/shared-state>

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use futures::SinkExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedWrite, LinesCodec};

/// The longest line a client may send, in bytes (without the `\n`).
pub const MAX_LINE: usize = 256;
/// How many lines may wait for a client that reads slowly; beyond that it misses messages.
pub const OUTBOX: usize = 32;

/// Who is connected: each client's outbox, by connection number.
type Room = Arc<Mutex<HashMap<u64, Client>>>;

struct Client {
    outbox: mpsc::Sender<String>,
}

/// Accepts clients forever; each one gets its own task.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let room = Room::default();
    let mut connections = 0;
    loop {
        let (stream, _) = listener.accept().await?;
        connections += 1;
        tokio::spawn(connection(stream, connections, Arc::clone(&room)));
    }
}

/// Puts `message` in the outbox of every client but `from`, without ever waiting: a full
/// outbox misses it, a closed one (its client is gone) leaves the room.
fn broadcast(room: &Room, from: u64, message: &str) {
    // TODO: `try_send` a copy of `message` to every outbox but `from`'s; drop from the room
    // the clients whose outbox is closed.
    let _ = (room, from, message);
    todo!()
}

/// One client, from welcome to goodbye.
async fn connection(stream: TcpStream, id: u64, room: Room) {
    // TODO: split the stream; give the client a bounded outbox (`OUTBOX`) drained by a
    // `write_lines` task; welcome it, add it to the room and announce it; broadcast each line
    // it sends (answering bad input); at the end, remove it and announce that it left.
    let _ = (stream, id, room);
    todo!()
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
    println!("and type. Ctrl-C stops the server.");
    serve(listener).await
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/chat_broadcast.toml`
    // (a broadcast that awaits each outbox, messages echoed to their sender, no join or leave
    // notice, a gone client kept in the room, invalid UTF-8 that ends the connection, no
    // maximum line length, an outbox without a useful bound).
    use super::*;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
    use tokio::net::TcpSocket;
    use tokio::net::tcp::OwnedReadHalf;
    use tokio::time::timeout;

    /// Real time, only ever reached by a wrong solution.
    const PATIENCE: Duration = Duration::from_millis(1000);

    struct Client {
        lines: Lines<BufReader<OwnedReadHalf>>,
        writer: OwnedWriteHalf,
    }

    impl Client {
        async fn connect(address: SocketAddr) -> Client {
            Client::from(TcpStream::connect(address).await.unwrap())
        }

        fn from(stream: TcpStream) -> Client {
            let (reader, writer) = stream.into_split();
            Client {
                lines: BufReader::new(reader).lines(),
                writer,
            }
        }

        async fn send(&mut self, bytes: &[u8]) {
            self.writer.write_all(bytes).await.unwrap();
        }

        async fn say(&mut self, text: &str) {
            self.send(format!("{text}\n").as_bytes()).await;
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
    }

    async fn start() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener));
        address
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

    #[tokio::test]
    async fn newcomers_are_welcomed_and_announced_to_the_others() {
        let address = start().await;
        room_of(address, 3).await;
    }

    #[tokio::test]
    async fn a_line_goes_to_everyone_but_its_sender() {
        let address = start().await;
        let mut clients = room_of(address, 3).await;
        clients[0].say("hello all").await;
        clients[1].expect("guest1: hello all").await;
        clients[2].expect("guest1: hello all").await;
        // guest2's line is the next thing guest1 receives: its own line did not come back.
        clients[1].say("hi guest1").await;
        clients[0].expect("guest2: hi guest1").await;
        clients[2].expect("guest2: hi guest1").await;
    }

    #[tokio::test]
    async fn a_client_that_leaves_is_announced_and_forgotten() {
        let address = start().await;
        let mut clients = room_of(address, 3).await;
        drop(clients.remove(1));
        clients[0].expect("* guest2 left").await;
        clients[1].expect("* guest2 left").await;
        clients[0].say("still here").await;
        clients[1].expect("guest1: still here").await;
    }

    // On the paused clock, a `timeout` fires only once nothing else can run and no socket
    // has anything ready: "nothing more will come", at no cost in real time.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_does_not_slow_the_others_and_costs_a_bounded_outbox() {
        // Small socket buffers, so the silent reader's socket fills after a few kilobytes.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(16).unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(serve(listener));
        let mut talker = Client::connect(address).await;
        talker.expect("* welcome, you are guest1").await;
        let silent = TcpSocket::new_v4().unwrap();
        silent.set_recv_buffer_size(4096).unwrap();
        let silent = silent.connect(address).await.unwrap(); // reads nothing until the end
        talker.expect("* guest2 joined").await;
        let mut listener_client = Client::connect(address).await;
        listener_client.expect("* welcome, you are guest3").await;
        talker.expect("* guest3 joined").await;

        // 1000 lines of 200 bytes: far more than the silent client's outbox and socket
        // buffers hold. The others must go on chatting at their own pace.
        let line = "x".repeat(200);
        for n in 0..1000 {
            talker.say(&line).await;
            let got = listener_client.next("the talker's next line").await;
            assert_eq!(
                got.as_deref().map(str::len),
                Some("guest1: ".len() + 200),
                "line {n}: {got:?}"
            );
        }

        // The silent client reads at last: what its outbox and socket held, no more.
        let mut silent = Client::from(silent);
        let (flooded, mut flood) = (format!("guest1: {line}"), 0);
        while let Ok(Ok(Some(got))) = timeout(PATIENCE, silent.lines.next_line()).await {
            flood += usize::from(got == flooded);
        }
        assert!(
            flood < 500,
            "the silent client got {flood} of the 1000 lines: its outbox grows without bound. \
             A client that never reads must cost a bounded amount of memory: a full outbox \
             misses messages (or the laggard is disconnected)"
        );
    }

    #[tokio::test]
    async fn bad_input_gets_a_clear_answer_and_never_stops_the_server() {
        let address = start().await;
        let mut clients = room_of(address, 2).await;
        clients[0].send(b"caf\xc3 \xff\n").await;
        clients[0].expect("error: not valid UTF-8").await;
        clients[0].say("sorry").await;
        clients[1].expect("guest1: sorry").await;

        clients[0].say(&"y".repeat(MAX_LINE)).await;
        clients[1]
            .expect(&format!("guest1: {}", "y".repeat(MAX_LINE)))
            .await;
        clients[0].say(&"z".repeat(MAX_LINE + 1)).await;
        clients[0]
            .expect("error: line too long (max 256 bytes)")
            .await;
        assert_eq!(
            clients[0].next("the end of the connection").await,
            None,
            "after a line too long, the server should close that connection"
        );
        clients[1].expect("* guest1 left").await;
        let mut newcomer = Client::connect(address).await;
        newcomer.expect("* welcome, you are guest3").await;
        clients[1].expect("* guest3 joined").await;
    }
}
