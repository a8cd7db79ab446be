//! # Chat server, step 2: commands
//!
//! *This step adds:* commands. Step 1's room is here, solved: broadcast, join and leave
//! notices, a bounded outbox and a writer task per client. A line that starts with `/` is now
//! a command:
//! - `/nick NAME` renames you (1 to 16 letters, digits, `-` or `_`). You get
//!   `* you are now NAME`, the others `* OLD is now NAME`; a name in use gets
//!   `error: nick NAME is in use`. Later notices use the new name.
//! - `/list` answers `* in the room: A, B, C`, names sorted.
//! - `/msg NAME text` sends `YOU (private): text` to NAME alone; an unknown NAME gets
//!   `error: no one called NAME`, a missing text `error: usage: /msg NAME text`.
//! - `/quit` answers `* bye` and disconnects you (the others see you leave).
//! - Anything else after `/` gets `error: unknown command /WORD (try /nick, /list, /msg, /quit)`.
//!
//! Parse first, act second: `parse` turns a line into an `Input` (or the error to answer) and
//! touches nothing, so it is tested without a socket; acting on it needs the room. Checking a
//! name is free and taking it must happen under one lock: two clients asking for the same
//! name at once must not both get it.
//! (Python: the same `asyncio.start_server` loop with `line.startswith("/")` and a `match`.)
//!
//! ## Your job
//! Implement `parse`, and `act` for each `Input`. Then play: `cargo run -p exercises --bin
//! chat_commands` prints the port; `nc 127.0.0.1 PORT` in two other terminals.
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

use futures::{SinkExt, StreamExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_util::codec::{
    AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead, FramedWrite, LinesCodec,
};

/// The longest line a client may send, in bytes (without the `\n`).
pub const MAX_LINE: usize = 256;
/// How many lines may wait for a client that reads slowly; beyond that it misses messages.
pub const OUTBOX: usize = 32;

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
    // TODO: a line without a leading `/` is said aloud; otherwise read the command.
    let _ = line;
    todo!()
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
    // TODO: say, rename (a name free and taken under one lock), list, whisper, or quit.
    let _ = (room, id, name, outbox, input);
    todo!()
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
    let mut clients = room.lock().expect("a thread panicked holding the room");
    clients.retain(|&id, client| {
        id == from
            || match client.outbox.try_send(message.to_owned()) {
                Ok(()) | Err(TrySendError::Full(_)) => true,
                Err(TrySendError::Closed(_)) => false,
            }
    });
}

/// One client, from welcome to goodbye.
async fn connection(stream: TcpStream, id: u64, room: Room) {
    let mut name = format!("guest{id}");
    let (reader, writer) = stream.into_split();
    let (outbox, inbox) = mpsc::channel(OUTBOX);
    // The writer ends (and closes the socket) once every `Sender` of the outbox is gone.
    tokio::spawn(write_lines(writer, inbox));
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
    while let Some(line) = lines.next().await {
        match line {
            Ok(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => match parse(text.trim_end_matches('\r')) {
                    Ok(input) => {
                        if !act(&room, id, &mut name, &outbox, input) {
                            break;
                        }
                    }
                    Err(error) => {
                        let _ = outbox.try_send(error);
                    }
                },
                Err(_) => {
                    let _ = outbox.try_send("error: not valid UTF-8".to_owned());
                }
            },
            Err(AnyDelimiterCodecError::MaxChunkLengthExceeded) => {
                let _ = outbox.try_send(format!("error: line too long (max {MAX_LINE} bytes)"));
                break;
            }
            Err(AnyDelimiterCodecError::Io(_)) => break,
        }
    }
    room.lock()
        .expect("a thread panicked holding the room")
        .remove(&id);
    broadcast(&room, id, &format!("* {name} left"));
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
    // What these checks reject: the wrong solutions of `corpus/04_projects/chat_commands.toml`
    // (a nick taken twice, notices under the old name, a private message sent to everyone or
    // with the name in its text, an unknown command said aloud, a `/quit` that stays, a
    // `/list` that misses the asker), and step 1's (see `chat_broadcast`).
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

    #[tokio::test]
    async fn a_client_that_never_reads_does_not_slow_the_others() {
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
        let _silent = silent.connect(address).await.unwrap(); // never reads a byte
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

    #[test]
    fn parse_reads_lines_and_commands() {
        assert_eq!(parse("hello /all"), Ok(Input::Say("hello /all")));
        assert_eq!(parse("/nick ann"), Ok(Input::Nick("ann")));
        assert_eq!(
            parse("/nick a-b_9"),
            Ok(Input::Nick("a-b_9")),
            "letters, digits, - and _"
        );
        let sixteen = "n".repeat(16);
        assert_eq!(
            parse(&format!("/nick {sixteen}")),
            Ok(Input::Nick(sixteen.as_str())),
            "16 characters is still a name"
        );
        assert_eq!(parse("/list"), Ok(Input::List));
        assert_eq!(
            parse("/msg bob see you at 5"),
            Ok(Input::Msg {
                to: "bob",
                text: "see you at 5"
            })
        );
        assert_eq!(parse("/quit"), Ok(Input::Quit));
        assert_eq!(
            parse("/dance"),
            Err("error: unknown command /dance (try /nick, /list, /msg, /quit)".to_owned())
        );
        assert_eq!(
            parse("/msg bob"),
            Err("error: usage: /msg NAME text".to_owned())
        );
        for bad in [
            "/nick",
            "/nick two words",
            "/nick seventeen_letters",
            "/nick é",
        ] {
            assert_eq!(
                parse(bad),
                Err("error: usage: /nick NAME (1 to 16 letters, digits, - or _)".to_owned()),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_new_nick_is_announced_used_and_unique() {
        let address = start().await;
        let mut clients = room_of(address, 3).await;
        clients[0].say("/nick ann").await;
        clients[0].expect("* you are now ann").await;
        clients[1].expect("* guest1 is now ann").await;
        clients[2].expect("* guest1 is now ann").await;
        clients[0].say("hi").await;
        clients[1].expect("ann: hi").await;

        clients[1].say("/nick ann").await;
        clients[1].expect("error: nick ann is in use").await;
        clients[1].say("/list").await;
        clients[1]
            .expect("* in the room: ann, guest2, guest3")
            .await;

        drop(clients.remove(0));
        clients[0].expect("* ann left").await;
    }

    #[tokio::test]
    async fn a_private_message_reaches_only_its_addressee() {
        let address = start().await;
        let mut clients = room_of(address, 3).await;
        clients[0].say("/msg guest3 psst, lunch?").await;
        clients[2].expect("guest1 (private): psst, lunch?").await;
        clients[0].say("/msg nobody hello").await;
        clients[0].expect("error: no one called nobody").await;
        // guest2's next line is this public one: the private message never reached it.
        clients[0].say("public").await;
        clients[1].expect("guest1: public").await;
        clients[2].expect("guest1: public").await;
    }

    #[tokio::test]
    async fn quit_says_bye_and_disconnects() {
        let address = start().await;
        let mut clients = room_of(address, 2).await;
        clients[0].say("/dance").await;
        clients[0]
            .expect("error: unknown command /dance (try /nick, /list, /msg, /quit)")
            .await;
        clients[0].say("/quit").await;
        clients[0].expect("* bye").await;
        assert_eq!(
            clients[0].next("the end of the connection").await,
            None,
            "after /quit the server should close the connection"
        );
        clients[1].expect("* guest1 left").await;
        clients[1].say("/list").await;
        clients[1].expect("* in the room: guest2").await;
    }
}
