//! # Web scraper, step 2: retries with backoff, and what `429 Retry-After` asks
//!
//! *This step adds:* retries. Step 1's fetcher is here, solved. Servers fail for a moment: a
//! `503` while a deploy rolls, a request that times out under load. A scraper tries again,
//! waiting longer each time (`base`, `2·base`, `4·base`…) so a struggling site gets air, and
//! gives up after `attempts` tries. Not everything is worth another try: a `404` will be a
//! `404` again, so only a `5xx`, a timeout or a broken connection are retried. A `429 Too Many
//! Requests` is the server saying *how long* to wait: its `Retry-After` header holds seconds,
//! and that wait replaces the backoff (a polite client never comes back sooner).
//!
//! The attempts of a page that answers `503` twice, then `200`, with `base` = 100 ms: at
//! 0 ms, 100 ms and 300 ms. A page that answers `429` with `Retry-After: 2`: again at 2 s.
//! (Python: a `for attempt in range(attempts)` loop around `session.get`, with
//! `await asyncio.sleep(base * 2 ** attempt)`; libraries: `tenacity`, `backoff`. In Rust,
//! `reqwest-retry` or tower's `retry` layer, as in chapter 2's `tower_stack`.)
//!
//! ## Your job
//! Finish `fetch_once` (step 1's `fetch_page`, one request): for a `429`, read the
//! `Retry-After` seconds. Then implement `fetch_with_retries`; `fetch_all` already calls it.
//!
//! ## Read
//! - <https://docs.rs/reqwest/latest/reqwest/struct.Response.html#method.headers>
//! - <https://docs.rs/reqwest/latest/reqwest/header/constant.RETRY_AFTER.html>
//! - <https://developer.mozilla.org/en-US/docs/Web/HTTP/Reference/Headers/Retry-After>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.sleep.html>

use std::time::Duration;

use futures::stream::{self, StreamExt};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;

/// Why a URL gave no page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The server answered with a status outside `2xx`.
    Status(u16),
    /// No complete answer before the request's deadline.
    Timeout,
    /// Anything else: the connection was refused or broke, the URL was bad…
    Failed(String),
}

/// The outcome of one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub url: String,
    pub body: Result<String, FetchError>,
    /// How many requests it took (1 when the first one settled it).
    pub attempts: u32,
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Requests in all, the first one included (at least 1).
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each one.
    pub base: Duration,
    /// Each request's own deadline.
    pub deadline: Duration,
}

/// One request's outcome, and the wait a `429` asked for.
pub struct Attempt {
    pub body: Result<String, FetchError>,
    pub retry_after: Option<Duration>,
}

/// Step 1's `fetch_page`, one request; for a `429`, also the `Retry-After` seconds.
pub async fn fetch_once(client: &reqwest::Client, url: &str, deadline: Duration) -> Attempt {
    let mut retry_after = None;
    let body = async {
        let response = client.get(url).timeout(deadline).send().await?;
        let status = response.status();
        if !status.is_success() {
            if status == StatusCode::TOO_MANY_REQUESTS {
                // TODO: the `Retry-After` header's whole seconds, when it has them, into
                // `retry_after`.
                let _ = (&mut retry_after, RETRY_AFTER);
            }
            return Ok(Err(FetchError::Status(status.as_u16())));
        }
        response.text().await.map(Ok)
    }
    .await
    .unwrap_or_else(|error: reqwest::Error| {
        Err(if error.is_timeout() {
            FetchError::Timeout
        } else {
            FetchError::Failed(error.to_string())
        })
    });
    Attempt { body, retry_after }
}

/// Whether another try may succeed: a server error, `429`, a timeout, a failed connection.
fn worth_retrying(error: &FetchError) -> bool {
    match error {
        FetchError::Status(status) => *status >= 500 || *status == 429,
        FetchError::Timeout | FetchError::Failed(_) => true,
    }
}

/// Fetches `url`, trying again after a failure worth retrying: after `base`, then twice as
/// long each time, or after what a `429`'s `Retry-After` says; `retry.attempts` in all.
pub async fn fetch_with_retries(client: &reqwest::Client, url: &str, retry: Retry) -> Page {
    // TODO: attempt after attempt (`fetch_once`), until a page, an error not worth
    // retrying, or the last attempt allowed; between two, sleep the backoff (doubling from
    // `retry.base`) or what the server's `Retry-After` asked.
    let _ = (client, url, retry, worth_retrying);
    todo!()
}

/// Fetches every URL, at most `limit` at a time, each with its retries; the pages come back
/// in the order of `urls`.
pub async fn fetch_all(
    client: &reqwest::Client,
    urls: Vec<String>,
    limit: usize,
    retry: Retry,
) -> Vec<Page> {
    let mut numbered: Vec<(usize, Page)> = stream::iter(urls.into_iter().enumerate())
        .map(|(n, url)| async move { (n, fetch_with_retries(client, &url, retry).await) })
        .buffer_unordered(limit)
        .collect()
        .await;
    numbered.sort_by_key(|(n, _)| *n);
    numbered.into_iter().map(|(_, page)| page).collect()
}

#[tokio::main]
async fn main() {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        println!("Usage: cargo run -p exercises-web --bin scraper_retry -- URL...");
        println!("(plain http:// only: this build of reqwest has no TLS)");
        return;
    }
    let client = reqwest::Client::new();
    let retry = Retry {
        attempts: 4,
        base: Duration::from_millis(500),
        deadline: Duration::from_secs(10),
    };
    for page in fetch_all(&client, urls, 4, retry).await {
        match page.body {
            Ok(body) => println!("{}: {} bytes", page.url, body.len()),
            Err(why) => println!(
                "{}: failed after {} tries, {why:?}",
                page.url, page.attempts
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/scraper_retry.toml`
    // (no backoff, a backoff that does not double, one attempt too many or too few, a 404
    // retried, a timeout or a refused connection not retried, `Retry-After` ignored, read as
    // milliseconds or added to the backoff, attempts not counted, one attempt per page in
    // `fetch_all`, `std::thread::sleep`).
    use super::*;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::{Instant, sleep};

    /// What the test server answers: status, extra header, body, and how long it takes.
    struct Reply {
        status: u16,
        header: &'static str,
        body: String,
        after: Duration,
    }

    /// `/page/N`: `page N` at once. `/flaky/K/N`: `503` to the first K requests, then
    /// `page N`. `/busy/S/N`: `429` with `Retry-After: S` to the first request, then `page N`.
    /// `/status/S`: always S. `/slow`: after 60 s. `seen` is how many requests the path had
    /// before this one.
    fn route(path: &str, seen: usize) -> Reply {
        let reply = |status, header, body: &str, after| Reply {
            status,
            header,
            body: body.to_owned(),
            after,
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["page", n] => reply(200, "", &format!("page {n}"), Duration::ZERO),
            ["flaky", k, n] if seen < k.parse().unwrap() => {
                reply(503, "", "try later", Duration::ZERO)
            }
            ["flaky", _, n] => reply(200, "", &format!("page {n}"), Duration::ZERO),
            ["busy", s, _] if seen == 0 => Reply {
                status: 429,
                header: match *s {
                    "2" => "retry-after: 2\r\n",
                    "3" => "retry-after: 3\r\n",
                    _ => "",
                },
                body: "slow down".to_owned(),
                after: Duration::ZERO,
            },
            ["busy", _, n] => reply(200, "", &format!("page {n}"), Duration::ZERO),
            ["status", s] => reply(s.parse().unwrap(), "", "an error page", Duration::ZERO),
            ["slow"] => reply(200, "", "too late", Duration::from_secs(60)),
            _ => reply(404, "", "not found", Duration::ZERO),
        }
    }

    /// Each request's path and virtual arrival time, in order of arrival.
    type Arrivals = Arc<Mutex<Vec<(String, Duration)>>>;

    /// A real HTTP/1.1 server on 127.0.0.1 (a port the system picks) that answers each
    /// request on its own connection after its route's delay on tokio's clock.
    struct Server {
        address: SocketAddr,
        arrivals: Arrivals,
    }

    impl Server {
        async fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let arrivals = Arrivals::default();
            let (start, log) = (Instant::now(), Arc::clone(&arrivals));
            tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    tokio::spawn(answer(stream, Arc::clone(&log), start));
                }
            });
            Server { address, arrivals }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.address)
        }

        /// When each request for `path` arrived, from the server's start.
        fn times(&self, path: &str) -> Vec<Duration> {
            let arrivals = self.arrivals.lock().unwrap();
            arrivals
                .iter()
                .filter(|(p, _)| p == path)
                .map(|(_, t)| *t)
                .collect()
        }

        fn requests(&self) -> usize {
            self.arrivals.lock().unwrap().len()
        }
    }

    async fn answer(stream: TcpStream, arrivals: Arrivals, start: Instant) {
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        let Ok(Some(request)) = lines.next_line().await else {
            return;
        };
        while let Ok(Some(header)) = lines.next_line().await {
            if header.is_empty() {
                break;
            }
        }
        let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
        let seen = {
            let mut arrivals = arrivals.lock().unwrap();
            let seen = arrivals.iter().filter(|(p, _)| *p == path).count();
            arrivals.push((path.clone(), start.elapsed()));
            seen
        };
        let reply = route(&path, seen);
        sleep(reply.after).await;
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n{}\r\n{}",
            reply.status,
            reply.body.len(),
            reply.header,
            reply.body
        );
        let _ = writer.write_all(response.as_bytes()).await;
    }

    fn client() -> reqwest::Client {
        // No proxy from the environment: the requests go straight to 127.0.0.1.
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    const RETRY: Retry = Retry {
        attempts: 4,
        base: Duration::from_millis(100),
        deadline: Duration::from_secs(1),
    };

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_that_answers_at_once_takes_one_request() {
        let server = Server::start().await;
        let page = fetch_with_retries(&client(), &server.url("/page/1"), RETRY).await;
        assert_eq!(page.body, Ok("page 1".to_owned()));
        assert_eq!(page.attempts, 1);
        assert_eq!(server.times("/page/1"), [ms(0)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_error_is_retried_after_a_doubling_backoff() {
        let server = Server::start().await;
        let page = fetch_with_retries(&client(), &server.url("/flaky/2/7"), RETRY).await;
        assert_eq!(page.body, Ok("page 7".to_owned()));
        assert_eq!(page.attempts, 3, "two 503s, then the page");
        assert_eq!(
            server.times("/flaky/2/7"),
            [ms(0), ms(100), ms(300)],
            "the retries should come after `base`, then twice `base`"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_last_attempt_the_last_error_is_the_result() {
        let server = Server::start().await;
        let page = fetch_with_retries(&client(), &server.url("/status/503"), RETRY).await;
        assert_eq!(page.body, Err(FetchError::Status(503)));
        assert_eq!(page.attempts, 4);
        assert_eq!(
            server.times("/status/503"),
            [ms(0), ms(100), ms(300), ms(700)],
            "exactly `attempts` requests in all, with no wait after the last one"
        );
        let start = Instant::now();
        let one = Retry {
            attempts: 1,
            ..RETRY
        };
        let page = fetch_with_retries(&client(), &server.url("/status/500"), one).await;
        assert_eq!(
            (page.body, page.attempts),
            (Err(FetchError::Status(500)), 1)
        );
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "one attempt allowed: no wait at all"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_error_is_not_retried() {
        let server = Server::start().await;
        for status in [400, 404] {
            let path = format!("/status/{status}");
            let page = fetch_with_retries(&client(), &server.url(&path), RETRY).await;
            assert_eq!(page.body, Err(FetchError::Status(status)));
            assert_eq!(
                server.times(&path),
                [ms(0)],
                "a {status} will be a {status} again: one request only"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_is_retried_each_attempt_with_its_own_deadline() {
        let server = Server::start().await;
        let retry = Retry {
            attempts: 3,
            ..RETRY
        };
        let start = Instant::now();
        let page = fetch_with_retries(&client(), &server.url("/slow"), retry).await;
        assert_eq!((page.body, page.attempts), (Err(FetchError::Timeout), 3));
        assert_eq!(
            server.times("/slow"),
            [ms(0), ms(1100), ms(2300)],
            "each attempt times out after 1 s, then waits 100 ms, then 200 ms"
        );
        assert_eq!(start.elapsed(), ms(3300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_is_retried() {
        // A port that was free a moment ago: nothing listens on it now.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = closed.local_addr().unwrap();
        drop(closed);
        let retry = Retry {
            attempts: 3,
            ..RETRY
        };
        let start = Instant::now();
        let page = fetch_with_retries(&client(), &format!("http://{address}/page/1"), retry).await;
        assert!(
            matches!(page.body, Err(FetchError::Failed(_))),
            "expected Err(FetchError::Failed(..)), got {:?}",
            page.body
        );
        assert_eq!(
            (page.attempts, start.elapsed()),
            (3, ms(300)),
            "a server that is restarting refuses connections for a moment: try again, after \
             100 ms, then 200 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn too_many_requests_waits_what_retry_after_says() {
        let server = Server::start().await;
        let page = fetch_with_retries(&client(), &server.url("/busy/2/5"), RETRY).await;
        assert_eq!((page.body, page.attempts), (Ok("page 5".to_owned()), 2));
        assert_eq!(
            server.times("/busy/2/5"),
            [ms(0), ms(2000)],
            "`Retry-After: 2` means 2 seconds, instead of the 100 ms backoff"
        );
        let page = fetch_with_retries(&client(), &server.url("/busy/3/6"), RETRY).await;
        assert_eq!(page.body, Ok("page 6".to_owned()));
        let times = server.times("/busy/3/6");
        assert_eq!(times[1] - times[0], ms(3000), "`Retry-After: 3`: 3 seconds");
    }

    #[tokio::test(start_paused = true)]
    async fn too_many_requests_without_retry_after_backs_off_as_usual() {
        let server = Server::start().await;
        let page = fetch_with_retries(&client(), &server.url("/busy/none/4"), RETRY).await;
        assert_eq!((page.body, page.attempts), (Ok("page 4".to_owned()), 2));
        assert_eq!(server.times("/busy/none/4"), [ms(0), ms(100)]);
    }

    #[tokio::test(start_paused = true)]
    async fn each_page_retries_on_its_own_within_the_limit() {
        let server = Server::start().await;
        let paths = ["/flaky/1/1", "/page/2", "/status/404", "/flaky/3/3"];
        let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
        let start = Instant::now();
        let pages = fetch_all(&client(), urls.clone(), 4, RETRY).await;
        let got: Vec<(Result<String, FetchError>, u32)> =
            pages.iter().map(|p| (p.body.clone(), p.attempts)).collect();
        assert_eq!(
            got,
            [
                (Ok("page 1".to_owned()), 2),
                (Ok("page 2".to_owned()), 1),
                (Err(FetchError::Status(404)), 1),
                (Ok("page 3".to_owned()), 4),
            ]
        );
        assert_eq!(
            pages.iter().map(|p| &p.url).collect::<Vec<_>>(),
            urls.iter().collect::<Vec<_>>()
        );
        assert_eq!(server.requests(), 8);
        assert_eq!(
            server.times("/flaky/3/3"),
            [ms(0), ms(100), ms(300), ms(700)],
            "one page's retries never wait for another's"
        );
        assert_eq!(start.elapsed(), ms(700));
    }
}
