//! # Framing by hand: `AsyncRead` and `AsyncWrite` with a length prefix
//!
//! Before any server, the two traits every byte goes through. `AsyncRead` gives *some* bytes
//! when they are there: one `read` may return 1 byte of a 10-byte message, or the end of one
//! message and the start of the next. `AsyncWrite` takes *some* bytes: `write` may accept
//! fewer than you gave, and returns how many. A protocol therefore needs **framing**, a way
//! to tell where each message ends, and code that loops until a whole frame is in or out.
//! The extension traits do the loops: `AsyncReadExt::read_exact` fills a buffer (or fails with
//! `UnexpectedEof`), `read_u32` reads a big-endian `u32`, `AsyncWriteExt::write_all` writes
//! everything, and `flush` pushes out what a buffered writer still holds.
//!
//! The framing here is the most common binary one: each frame is its length as a 4-byte
//! big-endian number, then that many bytes. Three rules keep a server safe and honest:
//! - a length over the maximum is refused *before* anything is allocated or read (a client
//!   that sends `0xFFFFFFFF` must not make the server reserve 4 GiB);
//! - the end of the stream *between* frames is a normal end (`Ok(None)`);
//! - the end of the stream *inside* a frame (in its length or its bytes) is an error.
//!
//! `read_exact` is not cancel-safe: inside a `select!` a lost race drops the bytes it had read.
//! That is why servers (the next exercises) read through a codec (`FramedRead` keeps its
//! buffer across polls). tokio-util's `LengthDelimitedCodec` is this framing, ready-made.
//! (Python: `await reader.readexactly(4)`, `int.from_bytes(header, "big")`, then
//! `readexactly(n)`; `asyncio.IncompleteReadError` is the mid-frame end.)
//!
//! ## Your job
//! Implement `write_frame` and `read_frame`.
//!
//! ## Read
//! - <https://docs.rs/tokio/latest/tokio/io/trait.AsyncReadExt.html#method.read_exact>
//! - <https://docs.rs/tokio/latest/tokio/io/trait.AsyncReadExt.html#method.read_u32>
//! - <https://docs.rs/tokio/latest/tokio/io/trait.AsyncWriteExt.html#method.write_all>
//! - <https://docs.rs/tokio/latest/tokio/io/fn.duplex.html>
//! - <https://docs.rs/tokio-util/latest/tokio_util/codec/length_delimited/index.html>

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Writes `payload` as one frame: its length as a big-endian `u32`, then its bytes; then
/// flushes. A payload longer than `u32::MAX` bytes is an `InvalidInput` error.
pub async fn write_frame<W>(writer: &mut W, payload: &[u8]) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let length = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
    writer.write_all(&length.to_be_bytes()).await?;
    writer.write_all(payload).await?;
    writer.flush().await
}

/// Reads the next frame. `Ok(None)` when the stream ends between frames; `UnexpectedEof`
/// when it ends inside one; `InvalidData` for a length over `max`, before reading its bytes.
pub async fn read_frame<R>(reader: &mut R, max: usize) -> io::Result<Option<Vec<u8>>>
where
    R: AsyncRead + Unpin,
{
    let mut header = [0; 4];
    // The first byte tells a clean end from a frame: `read` gives 0 only at the end.
    if reader.read(&mut header[..1]).await? == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut header[1..]).await?;
    let length = u32::from_be_bytes(header) as usize;
    if length > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes, over the maximum of {max}"),
        ));
    }
    let mut payload = vec![0; length];
    reader.read_exact(&mut payload).await?;
    Ok(Some(payload))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> io::Result<()> {
    // Two ends of an in-memory pipe that holds at most 5 bytes: every frame crosses it in
    // pieces, as it would cross a network.
    let (mut client, mut server) = tokio::io::duplex(5);
    let sender = tokio::spawn(async move {
        for message in ["hello", "", "a longer message than the pipe holds"] {
            write_frame(&mut client, message.as_bytes()).await?;
        }
        io::Result::Ok(())
    });
    while let Some(frame) = read_frame(&mut server, 1024).await? {
        println!(
            "frame of {} bytes: {:?}",
            frame.len(),
            String::from_utf8_lossy(&frame)
        );
    }
    println!("the other end closed the stream between two frames");
    sender.await.expect("the sender panicked")
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/length_frames.toml`
    // (one `read` or `write` taken for the whole, a little-endian length, a maximum checked
    // after reading or off by one, any end of the stream taken for a clean one, or a clean
    // end for an error, no flush).
    use super::*;
    use proptest::prelude::*;
    use std::io::ErrorKind;
    use tokio::io::duplex;
    use tokio_test::io::Builder;

    /// A writer and a reader joined by a pipe of `capacity` bytes: reads and writes move
    /// only what fits, so frames cross in pieces.
    fn pipe(capacity: usize) -> (tokio::io::DuplexStream, tokio::io::DuplexStream) {
        duplex(capacity)
    }

    #[tokio::test]
    async fn a_frame_is_its_big_endian_length_then_its_bytes() {
        let mut out = Vec::new();
        write_frame(&mut out, b"hello").await.unwrap();
        write_frame(&mut out, b"").await.unwrap();
        assert_eq!(out, b"\0\0\0\x05hello\0\0\0\0");
        let mut long = Vec::new();
        write_frame(&mut long, &[7; 300]).await.unwrap();
        assert_eq!(
            long[..4],
            [0, 0, 1, 44],
            "300 is 0x0000012C, most significant byte first"
        );
        let mut buffered = tokio::io::BufWriter::new(Vec::new());
        write_frame(&mut buffered, b"now").await.unwrap();
        assert_eq!(
            buffered.get_ref(),
            b"\0\0\0\x03now",
            "a frame written must be on its way: flush what a buffered writer still holds"
        );
    }

    #[tokio::test]
    async fn frames_cross_a_narrow_pipe_whole_and_in_order() {
        let (mut writer, mut reader) = pipe(3);
        let frames: Vec<Vec<u8>> = vec![b"hello".to_vec(), Vec::new(), vec![42; 100]];
        let sent = frames.clone();
        let sender = tokio::spawn(async move {
            for frame in &sent {
                write_frame(&mut writer, frame).await.unwrap();
            }
        });
        for expected in &frames {
            let got = read_frame(&mut reader, 1000).await.unwrap();
            assert_eq!(
                got.as_ref(),
                Some(expected),
                "every write and read of a 3-byte pipe moves 3 bytes at most: loop until the \
                 whole frame is out, and in"
            );
        }
        sender.await.unwrap();
        assert_eq!(
            read_frame(&mut reader, 1000).await.unwrap(),
            None,
            "the writer is gone: the stream ended between two frames"
        );
    }

    #[tokio::test]
    async fn bytes_that_arrive_in_pieces_make_one_frame() {
        let mut reader = Builder::new()
            .read(&[0])
            .read(&[0, 0])
            .read(&[3, b'a'])
            .read(b"b")
            .read(b"c\0\0")
            .read(&[0, 1, b'z'])
            .build();
        assert_eq!(
            read_frame(&mut reader, 10).await.unwrap(),
            Some(b"abc".to_vec())
        );
        assert_eq!(
            read_frame(&mut reader, 10).await.unwrap(),
            Some(b"z".to_vec())
        );
        assert_eq!(read_frame(&mut reader, 10).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_end_of_the_stream_inside_a_frame_is_an_error() {
        let mut in_length = Builder::new().read(&[0, 0]).build();
        let error = read_frame(&mut in_length, 10).await.unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::UnexpectedEof,
            "the stream ended after 2 of the length's 4 bytes"
        );
        let mut in_bytes = Builder::new().read(&[0, 0, 0, 5]).read(b"hel").build();
        let error = read_frame(&mut in_bytes, 10).await.unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::UnexpectedEof,
            "the stream ended after 3 of the frame's 5 bytes"
        );
    }

    #[tokio::test]
    async fn a_length_over_the_maximum_is_refused_before_its_bytes_are_read() {
        // Only the length arrives: reading on would hit the end of the stream instead.
        let mut reader = Builder::new().read(&[0xFF, 0xFF, 0xFF, 0xFF]).build();
        let error = read_frame(&mut reader, 1024).await.unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidData,
            "a length of 4 GiB must be refused at once, not allocated and read"
        );
        let mut at_max = Builder::new().read(&[0, 0, 0, 4]).read(b"full").build();
        assert_eq!(
            read_frame(&mut at_max, 4).await.unwrap(),
            Some(b"full".to_vec()),
            "a frame of exactly the maximum is allowed"
        );
        let mut over = Builder::new().read(&[0, 0, 0, 5]).build();
        assert_eq!(
            read_frame(&mut over, 4).await.unwrap_err().kind(),
            ErrorKind::InvalidData
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any frames, through a pipe of any small capacity, come out as they went in.
        #[test]
        fn any_frames_survive_any_pipe(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            capacity in 1usize..16,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime");
            let got = runtime.block_on(async {
                let (mut writer, mut reader) = pipe(capacity);
                let sent = frames.clone();
                let sender = tokio::spawn(async move {
                    for frame in &sent {
                        write_frame(&mut writer, frame).await.unwrap();
                    }
                });
                // As many reads as frames, then one for the end: a wrong answer fails, never
                // loops.
                let mut got = Vec::new();
                for _ in 0..=frames.len() {
                    got.push(read_frame(&mut reader, 300).await.unwrap());
                }
                // A reader that stopped early must not leave the writer waiting for room.
                drop(reader);
                let _ = sender.await;
                got
            });
            let expected: Vec<Option<Vec<u8>>> =
                frames.into_iter().map(Some).chain([None]).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
