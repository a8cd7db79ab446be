//! # Web scraper, step 1: many pages over real HTTP, a few at a time
//!
//! A scraper's first job is to fetch a list of URLs without drowning the sites it reads or its
//! own machine: at most `limit` requests in flight, each with its own deadline, and a result
//! for every URL, success or not. The tool of a Rust service is `reqwest`: one `Client` for
//! the whole run (it holds the connection pool; building one per request throws it away),
//! `client.get(url).timeout(t).send().await` for the status and headers, then `.text()` for
//! the body. A response with status 404 or 500 is not an `Err` from reqwest: the server
//! answered. Your scraper decides that only `2xx` is a page.
//!
//! The concurrency limit is a stream adapter: `stream::iter(urls).map(|url| fetch(url))`
//! makes a stream of futures, and `.buffer_unordered(limit)` runs up to `limit` of them at
//! once and yields each output as it finishes. Its sibling `.buffered(limit)` yields them in
//! the input's order, and pays for it with head-of-line blocking: a finished page waits
//! behind a slow one *and keeps its slot*, so one slow site stalls the whole scraper. Number
//! the URLs, run them unordered, and put the results back in order at the end. (The other
//! way is a `Semaphore` whose permit each spawned task holds while it fetches.)
//! (Python: `aiohttp.ClientSession` shared by all, `asyncio.Semaphore(limit)` around each
//! `session.get(url, timeout=...)`, and `asyncio.gather(*tasks)`.)
//!
//! ## Your job
//! Implement `fetch_page` (one URL, classified: the body, a bad status, a timeout or a
//! connection failure) and `fetch_all` (every URL, at most `limit` at once, results in the
//! order of `urls`). The checks run a real HTTP server on 127.0.0.1 whose pages answer after
//! delays on tokio's paused clock, so the times they assert are exact.
//!
//! ## Read
//! - <https://docs.rs/reqwest/latest/reqwest/struct.Client.html>
//! - <https://docs.rs/reqwest/latest/reqwest/struct.RequestBuilder.html#method.timeout>
//! - <https://docs.rs/reqwest/latest/reqwest/struct.Error.html#method.is_timeout>
//! - <https://docs.rs/futures/latest/futures/stream/trait.StreamExt.html#method.buffer_unordered>
//! - <https://docs.rs/futures/latest/futures/stream/trait.StreamExt.html#method.buffered>

use std::time::Duration;

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
}

/// Fetches `url`; the whole request (connecting, the answer and its body) has `deadline`.
pub async fn fetch_page(client: &reqwest::Client, url: &str, deadline: Duration) -> Page {
    // TODO: send a GET with `deadline` as its timeout; a `2xx` answer's body is the page,
    // any other status is `FetchError::Status`; sort reqwest's errors into `Timeout` and
    // `Failed`.
    let _ = (client, url, deadline);
    todo!()
}

/// Fetches every URL, at most `limit` at a time, a new one as soon as a slot is free; the
/// pages come back in the order of `urls`.
pub async fn fetch_all(
    client: &reqwest::Client,
    urls: Vec<String>,
    limit: usize,
    deadline: Duration,
) -> Vec<Page> {
    // TODO: every URL through `fetch_page`, at most `limit` at a time, the pages in the
    // order of `urls`.
    let _ = (client, urls, limit, deadline);
    todo!()
}

#[tokio::main]
async fn main() {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        println!("Usage: cargo run -p exercises-web --bin scraper_fetch -- URL...");
        println!("(plain http:// only: this build of reqwest has no TLS)");
        return;
    }
    let client = reqwest::Client::new();
    for page in fetch_all(&client, urls, 4, Duration::from_secs(10)).await {
        match page.body {
            Ok(body) => println!("{}: {} bytes", page.url, body.len()),
            Err(why) => println!("{}: failed, {why:?}", page.url),
        }
    }
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/scraper_fetch.toml`
    // (no limit, one request at a time, `buffered` and its head-of-line blocking, a 500's or
    // a 404's body taken for a page, a timeout fixed in the code, none, or one that stops at
    // the headers, a timeout called a failure, results in the order they finished, a panic
    // on a refused connection, a `Client` of its own instead of the one given).
    use super::*;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::{Instant, sleep};

    /// What the test server answers to a path: status, body, and how long it takes.
    struct Reply {
        status: u16,
        body: String,
        /// Before the status line and headers.
        after: Duration,
        /// Between the headers and the body.
        body_after: Duration,
    }

    /// `/page/N?ms=M`: `page N` after M ms; `/status/S`: status S at once; `/slow`: after 60 s;
    /// `/trickle`: the status and headers at once, the body after 60 s.
    fn route(path: &str) -> Reply {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let ms = query
            .strip_prefix("ms=")
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0);
        let reply = |status, body: &str, after| Reply {
            status,
            body: body.to_owned(),
            after,
            body_after: Duration::ZERO,
        };
        if let Some(n) = path.strip_prefix("/page/") {
            reply(200, &format!("page {n}"), Duration::from_millis(ms))
        } else if let Some(status) = path.strip_prefix("/status/") {
            reply(status.parse().unwrap(), "an error page", Duration::ZERO)
        } else if path == "/slow" {
            reply(200, "too late", Duration::from_secs(60))
        } else if path == "/trickle" {
            Reply {
                body_after: Duration::from_secs(60),
                ..reply(200, "too late", Duration::ZERO)
            }
        } else {
            reply(404, "not found", Duration::ZERO)
        }
    }

    /// What the server saw: each request's path and virtual arrival time, and the most
    /// requests it was answering at once.
    #[derive(Default)]
    struct Seen {
        arrivals: Vec<(String, Duration)>,
        /// Each request's `user-agent` header.
        agents: Vec<String>,
        in_flight: usize,
        peak: usize,
    }

    /// A real HTTP/1.1 server on 127.0.0.1 (a port the system picks) that answers each
    /// request on its own connection after its route's delay on tokio's clock.
    struct Server {
        address: SocketAddr,
        seen: Arc<Mutex<Seen>>,
    }

    impl Server {
        async fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            let seen = Arc::new(Mutex::new(Seen::default()));
            let start = Instant::now();
            let log = Arc::clone(&seen);
            tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    tokio::spawn(answer(stream, Arc::clone(&log), start));
                }
            });
            Server { address, seen }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.address)
        }

        fn arrivals(&self) -> Vec<(String, Duration)> {
            self.seen.lock().unwrap().arrivals.clone()
        }

        fn peak(&self) -> usize {
            self.seen.lock().unwrap().peak
        }
    }

    async fn answer(stream: TcpStream, seen: Arc<Mutex<Seen>>, start: Instant) {
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        let Ok(Some(request)) = lines.next_line().await else {
            return;
        };
        let mut agent = String::new();
        while let Ok(Some(header)) = lines.next_line().await {
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("user-agent")
            {
                agent = value.trim().to_owned();
            }
        }
        let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
        {
            let mut seen = seen.lock().unwrap();
            seen.arrivals.push((path.clone(), start.elapsed()));
            seen.agents.push(agent);
            seen.in_flight += 1;
            seen.peak = seen.peak.max(seen.in_flight);
        }
        let reply = route(&path);
        sleep(reply.after).await;
        let head = format!(
            "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            reply.status,
            reply.body.len(),
        );
        if writer.write_all(head.as_bytes()).await.is_ok() {
            sleep(reply.body_after).await;
            let _ = writer.write_all(reply.body.as_bytes()).await;
        }
        seen.lock().unwrap().in_flight -= 1;
    }

    /// The checks' client: no proxy from the environment (the requests go straight to
    /// 127.0.0.1), and a user agent of its own, by which the server knows its requests.
    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .user_agent(AGENT)
            .build()
            .unwrap()
    }

    const AGENT: &str = "asynclings-checks";

    const DEADLINE: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn a_page_is_its_body_fetched_over_http() {
        let server = Server::start().await;
        let page = fetch_page(&client(), &server.url("/page/7?ms=30"), DEADLINE).await;
        assert_eq!(page.url, server.url("/page/7?ms=30"));
        assert_eq!(page.body, Ok("page 7".to_owned()));
        assert_eq!(
            server.arrivals(),
            [("/page/7?ms=30".to_owned(), Duration::ZERO)],
            "the server should see exactly one request"
        );
        assert_eq!(
            server.seen.lock().unwrap().agents,
            [AGENT],
            "the request should go through the `Client` you are given (it holds the connection \
             pool and the settings); `reqwest::get` or `Client::new()` builds another"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_status_outside_2xx_is_an_error_with_its_code_not_a_page() {
        let server = Server::start().await;
        let client = client();
        for status in [404, 500, 503] {
            let page =
                fetch_page(&client, &server.url(&format!("/status/{status}")), DEADLINE).await;
            assert_eq!(
                page.body,
                Err(FetchError::Status(status)),
                "the server answered {status} with an error page: that is no page"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_slower_than_its_deadline_is_a_timeout_at_the_deadline() {
        let server = Server::start().await;
        let start = Instant::now();
        let page = fetch_page(&client(), &server.url("/slow"), DEADLINE).await;
        assert_eq!(page.body, Err(FetchError::Timeout));
        assert_eq!(
            start.elapsed(),
            DEADLINE,
            "the request should give up at its own deadline"
        );
        let start = Instant::now();
        let page = fetch_page(&client(), &server.url("/slow"), Duration::from_millis(250)).await;
        assert_eq!(page.body, Err(FetchError::Timeout));
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(250),
            "each call's `deadline` is the one that counts"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_finishes_is_a_timeout_too() {
        let server = Server::start().await;
        let start = Instant::now();
        let page = fetch_page(&client(), &server.url("/trickle"), DEADLINE).await;
        assert_eq!(
            page.body,
            Err(FetchError::Timeout),
            "the status and headers came at once, the body never in time"
        );
        assert_eq!(
            start.elapsed(),
            DEADLINE,
            "the deadline covers the whole request, reading the body included"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_is_an_error_not_a_panic() {
        // A port that was free a moment ago: nothing listens on it now.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = closed.local_addr().unwrap();
        drop(closed);
        let page = fetch_page(&client(), &format!("http://{address}/page/1"), DEADLINE).await;
        assert!(
            matches!(page.body, Err(FetchError::Failed(_))),
            "nothing listens there: expected Err(FetchError::Failed(..)), got {:?}",
            page.body
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_url_gets_its_result_in_the_order_asked() {
        let server = Server::start().await;
        // The first page is the slowest: it still comes first.
        let paths = [
            "/page/1?ms=300",
            "/status/500",
            "/page/2?ms=100",
            "/slow",
            "/page/3",
        ];
        let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
        let pages = fetch_all(&client(), urls.clone(), 5, DEADLINE).await;
        let page = |i: usize, body: Result<&str, FetchError>| Page {
            url: urls[i].clone(),
            body: body.map(str::to_owned),
        };
        let expected = vec![
            page(0, Ok("page 1")),
            page(1, Err(FetchError::Status(500))),
            page(2, Ok("page 2")),
            page(3, Err(FetchError::Timeout)),
            page(4, Ok("page 3")),
        ];
        assert_eq!(pages, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_limit_requests_are_in_flight_and_the_limit_is_used() {
        let server = Server::start().await;
        // Nine pages of 100 ms each, three at a time: three rounds, 300 ms in all.
        let urls: Vec<String> = (1..=9)
            .map(|n| server.url(&format!("/page/{n}?ms=100")))
            .collect();
        let start = Instant::now();
        let pages = fetch_all(&client(), urls, 3, DEADLINE).await;
        assert!(pages.iter().all(|p| p.body.is_ok()), "{pages:?}");
        assert_eq!(
            server.peak(),
            3,
            "the server should answer exactly `limit` requests at once at the busiest"
        );
        let mut times: Vec<Duration> = server.arrivals().into_iter().map(|(_, t)| t).collect();
        times.sort();
        let ms = |ms| Duration::from_millis(ms);
        assert_eq!(
            times,
            [
                ms(0),
                ms(0),
                ms(0),
                ms(100),
                ms(100),
                ms(100),
                ms(200),
                ms(200),
                ms(200)
            ],
            "each request should start as soon as a slot is free, never before"
        );
        assert_eq!(start.elapsed(), ms(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_page_holds_one_slot_not_the_others() {
        let server = Server::start().await;
        // Two slots: the slow page keeps one until its deadline; the other serves the rest,
        // each page as soon as the one before it is done (no waiting behind the slow one).
        let mut urls = vec![server.url("/slow")];
        urls.extend((1..=4).map(|n| server.url(&format!("/page/{n}?ms=100"))));
        let start = Instant::now();
        let pages = fetch_all(&client(), urls, 2, DEADLINE).await;
        assert_eq!(pages[0].body, Err(FetchError::Timeout));
        assert!(pages[1..].iter().all(|p| p.body.is_ok()), "{pages:?}");
        let arrivals = server.arrivals();
        let page_4 = arrivals
            .iter()
            .find(|(path, _)| path.starts_with("/page/4"))
            .map(|(_, t)| *t);
        assert_eq!(
            page_4,
            Some(Duration::from_millis(300)),
            "pages 1 to 4 share the free slot one after the other: page 4 starts at 300 ms"
        );
        assert_eq!(start.elapsed(), DEADLINE);
    }
}
