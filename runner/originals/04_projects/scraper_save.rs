//! # Web scraper, step 3: polite to each site, pages saved whole, a report
//!
//! *This step adds:* what makes the scraper fit to run against sites you do not own. Step 2's
//! fetcher with retries is here, solved.
//!
//! **Politeness per site.** The concurrency limit protects your machine; a site needs its own
//! protection: requests to one site (host and port) start at least `gap` apart, while other
//! sites go on at their own pace. Every request waits for its turn, retries included. The
//! turn is a reservation: under a lock, a site's next free start is read and moved on by
//! `gap`; the sleep until that start happens after the lock is released (a `std::sync::Mutex`
//! is right here: it is never held across an `.await`).
//!
//! **Saving whole pages.** A reader (or a crash) must never find half a page. So a page is
//! written to a temporary file *in the same folder*, then renamed over its final name:
//! `rename` replaces the name in one step, and a program that had the old file open keeps
//! reading the old page whole. (Writing in place truncates the old file under that reader.)
//! The temporary file is in the same folder because `rename` cannot cross file systems.
//! `tokio::fs` runs these calls on the blocking pool, so the runtime is never stalled.
//!
//! **A report.** Every URL ends as a saved file or a failure with its reason, in the order
//! asked.
//! (Python: a dict of `asyncio.Lock`s or next-start times per `urlparse(url).netloc`;
//! `aiofiles` to write `path + ".tmp"`, then `os.replace(tmp, path)`. In Rust, the
//! `governor` crate limits rates per key.)
//!
//! ## Your job
//! Implement `Sites::wait_turn`, `save` and `scrape`. Then try it:
//! `cargo run -p exercises-web --bin scraper_save -- http://127.0.0.1:PORT/...` against any
//! plain-HTTP server (`python3 -m http.server` serves the current folder).
//!
//! ## Read
//! - <https://docs.rs/reqwest/latest/reqwest/struct.Url.html#method.host_str>
//! - <https://docs.rs/tokio/latest/tokio/time/fn.sleep_until.html>
//! - <https://docs.rs/tokio/latest/tokio/fs/fn.write.html>
//! - <https://docs.rs/tokio/latest/tokio/fs/fn.rename.html>
//! - <https://tokio.rs/tokio/tutorial/shared-state#on-using-stdsyncmutex-and-tokiosyncmutex>

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use tokio::time::Instant;

/// Why a URL gave no page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The server answered with a status outside `2xx`.
    Status(u16),
    /// No complete answer before the request's deadline.
    Timeout,
    /// Anything else: the connection was refused or broke, the URL was bad…
    Failed(String),
    /// The page came, but it could not be written.
    Save(String),
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

/// The whole run's settings.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Requests in flight at most, all sites together.
    pub limit: usize,
    /// The shortest time between two request starts to one site.
    pub gap: Duration,
    pub retry: Retry,
}

/// What became of every URL, in the order asked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Each saved page's URL and file.
    pub saved: Vec<(String, PathBuf)>,
    /// Each other URL and why.
    pub failed: Vec<(String, FetchError)>,
}

/// When each site may next be sent a request.
pub struct Sites {
    gap: Duration,
    next_start: Mutex<HashMap<String, Instant>>,
}

impl Sites {
    pub fn new(gap: Duration) -> Sites {
        Sites {
            gap,
            next_start: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a request to `url`'s site may start: `gap` after the previous start
    /// reserved for that site (at once for a site not seen yet).
    pub async fn wait_turn(&self, url: &str) {
        // TODO: under the lock, reserve this site's start (now, or its next free start if
        // later) and move the site's next free start to `gap` after it; then, the lock
        // released, sleep until the start.
        let _ = (url, site, &self.next_start, self.gap);
        todo!()
    }
}

/// A URL's site: `host:port` (the scheme's port when the URL names none).
fn site(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(url) => format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => url.to_owned(),
    }
}

/// The file a URL's page is saved as: its path, with anything but letters and digits
/// made `_`, and `.html`.
pub fn file_name(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, path)| path);
    let name: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{}.html", if name.is_empty() { "index" } else { &name })
}

/// Writes `body` to `dir/name` whole: to a temporary file in `dir`, then renamed over
/// `name`. Returns the file's path.
pub async fn save(dir: &Path, name: &str, body: &str) -> io::Result<PathBuf> {
    // TODO: write `body` to a temporary file in `dir`, then rename it to `dir/name`.
    let _ = (dir, name, body);
    todo!()
}

/// One request's outcome, and the wait a `429` asked for.
pub struct Attempt {
    pub body: Result<String, FetchError>,
    pub retry_after: Option<Duration>,
}

/// Step 2's `fetch_once`: one request; for a `429`, also the `Retry-After` seconds.
pub async fn fetch_once(client: &reqwest::Client, url: &str, deadline: Duration) -> Attempt {
    let mut retry_after = None;
    let body = async {
        let response = client.get(url).timeout(deadline).send().await?;
        let status = response.status();
        if !status.is_success() {
            if status == StatusCode::TOO_MANY_REQUESTS {
                retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|value| value.to_str().ok()?.trim().parse().ok())
                    .map(Duration::from_secs);
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
        FetchError::Save(_) => false,
    }
}

/// Step 2's `fetch_with_retries`; every attempt now waits for its site's turn.
pub async fn fetch_with_retries(
    client: &reqwest::Client,
    sites: &Sites,
    url: &str,
    retry: Retry,
) -> Page {
    let mut wait = retry.base;
    let mut attempts = 0;
    loop {
        attempts += 1;
        sites.wait_turn(url).await;
        let attempt = fetch_once(client, url, retry.deadline).await;
        let again = match &attempt.body {
            Ok(_) => false,
            Err(error) => worth_retrying(error) && attempts < retry.attempts,
        };
        if !again {
            return Page {
                url: url.to_owned(),
                body: attempt.body,
                attempts,
            };
        }
        tokio::time::sleep(attempt.retry_after.unwrap_or(wait)).await;
        wait *= 2;
    }
}

/// Fetches every URL (at most `config.limit` at a time, each site's requests `config.gap`
/// apart, with retries), saves each page in `dir` as `file_name(url)`, and reports.
pub async fn scrape(
    client: &reqwest::Client,
    urls: Vec<String>,
    dir: &Path,
    config: Config,
) -> Report {
    // TODO: fetch every URL (at most `config.limit` at once, `Sites` for the gaps), save
    // each page as `file_name(url)` in `dir`, and report every URL in the order asked.
    let _ = (client, urls, dir, config, fetch_with_retries);
    todo!()
}

#[tokio::main]
async fn main() -> io::Result<()> {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        println!("Usage: cargo run -p exercises-web --bin scraper_save -- URL...");
        println!("(plain http:// only: this build of reqwest has no TLS)");
        return Ok(());
    }
    let dir = PathBuf::from("scraped");
    tokio::fs::create_dir_all(&dir).await?;
    let config = Config {
        limit: 4,
        gap: Duration::from_millis(500),
        retry: Retry {
            attempts: 4,
            base: Duration::from_millis(500),
            deadline: Duration::from_secs(10),
        },
    };
    let report = scrape(&reqwest::Client::new(), urls, &dir, config).await;
    for (url, path) in &report.saved {
        println!("saved {url} as {}", path.display());
    }
    for (url, why) in &report.failed {
        println!("failed {url}: {why:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // What these checks reject: the wrong solutions of `corpus/04_projects/scraper_save.toml`
    // (no gap, one gap for all sites, the gap only before a page's first attempt, a lock held
    // through the wait, the page written in place, a temporary file left behind, a failure
    // missing from the report, the report in finishing order, a panic when the folder cannot
    // be written).
    use super::*;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::sleep;

    /// What the test server answers: status, extra header, body, and how long it takes.
    struct Reply {
        status: u16,
        header: String,
        body: String,
        after: Duration,
    }

    /// `/page/N`: `page N`. `/flaky/K/N`: `503` to the first K requests, then `page N`.
    /// `/redirect/N`: `302` to `/page/N`. `/status/S`: always S. `/slow`: after 60 s.
    /// `seen` is how many requests the path had before this one.
    fn route(path: &str, seen: usize) -> Reply {
        let reply = |status, body: &str| Reply {
            status,
            header: String::new(),
            body: body.to_owned(),
            after: Duration::ZERO,
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["page", n] => reply(200, &format!("page {n}")),
            ["flaky", k, _] if seen < k.parse().unwrap() => reply(503, "try later"),
            ["flaky", _, n] => reply(200, &format!("page {n}")),
            ["redirect", n] => Reply {
                header: format!("location: /page/{n}\r\n"),
                ..reply(302, "moved")
            },
            ["status", s] => reply(s.parse().unwrap(), "an error page"),
            ["slow"] => Reply {
                after: Duration::from_secs(60),
                ..reply(200, "too late")
            },
            _ => reply(404, "not found"),
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

        /// Every request's arrival time, in order.
        fn all_times(&self) -> Vec<Duration> {
            let arrivals = self.arrivals.lock().unwrap();
            arrivals.iter().map(|(_, t)| *t).collect()
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

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    const CONFIG: Config = Config {
        limit: 4,
        gap: Duration::from_millis(200),
        retry: Retry {
            attempts: 2,
            base: Duration::from_millis(100),
            deadline: Duration::from_secs(1),
        },
    };

    /// The names of the files in `dir`, sorted.
    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test(start_paused = true)]
    async fn requests_to_one_site_start_gap_apart() {
        let server = Server::start().await;
        let dir = tempfile::tempdir().unwrap();
        let urls: Vec<String> = (1..=4).map(|n| server.url(&format!("/page/{n}"))).collect();
        let start = Instant::now();
        let report = scrape(&client(), urls, dir.path(), CONFIG).await;
        assert_eq!(report.saved.len(), 4, "{report:?}");
        assert_eq!(
            server.all_times(),
            [ms(0), ms(200), ms(400), ms(600)],
            "four slots free, but one site: a request every `gap`, the first at once"
        );
        assert_eq!(start.elapsed(), ms(600));
    }

    #[tokio::test(start_paused = true)]
    async fn two_sites_keep_their_own_pace() {
        let (a, b) = (Server::start().await, Server::start().await);
        let dir = tempfile::tempdir().unwrap();
        let urls = vec![
            a.url("/page/1"),
            a.url("/page/2"),
            b.url("/page/3"),
            b.url("/page/4"),
        ];
        let report = scrape(&client(), urls, dir.path(), CONFIG).await;
        assert_eq!(report.saved.len(), 4, "{report:?}");
        assert_eq!(a.all_times(), [ms(0), ms(200)]);
        assert_eq!(
            b.all_times(),
            [ms(0), ms(200)],
            "another site's turns never wait for this one's"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_waits_for_its_sites_turn_too() {
        let server = Server::start().await;
        let dir = tempfile::tempdir().unwrap();
        let urls = vec![server.url("/flaky/1/1"), server.url("/page/2")];
        let config = Config {
            gap: ms(500),
            ..CONFIG
        };
        let report = scrape(&client(), urls, dir.path(), config).await;
        assert_eq!(report.saved.len(), 2, "{report:?}");
        assert_eq!(server.times("/page/2"), [ms(500)]);
        assert_eq!(
            server.times("/flaky/1/1"),
            [ms(0), ms(1000)],
            "the retry is due at 100 ms, but the site's next turn is at 1000 ms"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_page_is_saved_whole_under_its_name_and_nothing_else_is_left() {
        let server = Server::start().await;
        let dir = tempfile::tempdir().unwrap();
        let urls = vec![server.url("/page/1"), server.url("/redirect/2")];
        let report = scrape(&client(), urls.clone(), dir.path(), CONFIG).await;
        let expected = vec![
            (urls[0].clone(), dir.path().join("page_1.html")),
            (urls[1].clone(), dir.path().join("redirect_2.html")),
        ];
        assert_eq!(report.saved, expected, "{report:?}");
        assert_eq!(
            files(dir.path()),
            ["page_1.html", "redirect_2.html"],
            "only the pages: no temporary file may be left behind"
        );
        let read = |name| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("page_1.html"), "page 1");
        assert_eq!(
            read("redirect_2.html"),
            "page 2",
            "a redirect is followed to its page"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_is_replaced_by_rename_so_a_reader_of_the_old_one_reads_it_whole() {
        let server = Server::start().await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("page_1.html");
        std::fs::write(&path, "the old page").unwrap();
        let mut reader = std::fs::File::open(&path).unwrap();
        let report = scrape(&client(), vec![server.url("/page/1")], dir.path(), CONFIG).await;
        assert_eq!(report.saved.len(), 1, "{report:?}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "page 1");
        let mut old = String::new();
        std::io::Read::read_to_string(&mut reader, &mut old).unwrap();
        assert_eq!(
            old, "the old page",
            "the file was rewritten in place: a reader that had it open saw it change \
             under it. Write a temporary file, then rename it over the old one"
        );
        assert_eq!(files(dir.path()), ["page_1.html"]);
    }

    #[tokio::test(start_paused = true)]
    async fn save_returns_the_pages_path_and_leaves_only_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let path = save(dir.path(), "a.html", "some text").await.unwrap();
        assert_eq!(path, dir.path().join("a.html"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "some text");
        assert_eq!(files(dir.path()), ["a.html"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_says_what_failed_and_why_in_the_order_asked() {
        let server = Server::start().await;
        let dir = tempfile::tempdir().unwrap();
        let paths = [
            "/slow",
            "/page/1",
            "/status/404",
            "/flaky/5/2",
            "/flaky/1/3",
        ];
        let urls: Vec<String> = paths.iter().map(|p| server.url(p)).collect();
        let report = scrape(&client(), urls.clone(), dir.path(), CONFIG).await;
        assert_eq!(
            report.failed,
            [
                (urls[0].clone(), FetchError::Timeout),
                (urls[2].clone(), FetchError::Status(404)),
                (urls[3].clone(), FetchError::Status(503)),
            ]
        );
        let saved: Vec<&str> = report.saved.iter().map(|(url, _)| url.as_str()).collect();
        assert_eq!(saved, [urls[1].as_str(), urls[4].as_str()]);
        assert_eq!(files(dir.path()), ["flaky_1_3.html", "page_1.html"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_that_cannot_be_saved_is_a_failure_not_a_panic() {
        let server = Server::start().await;
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no such folder");
        let url = server.url("/page/1");
        let report = scrape(&client(), vec![url.clone()], &missing, CONFIG).await;
        assert!(report.saved.is_empty(), "{report:?}");
        assert!(
            matches!(report.failed.as_slice(), [(u, FetchError::Save(_))] if *u == url),
            "expected one Save failure for {url}, got {report:?}"
        );
        assert_eq!(files(dir.path()), Vec::<String>::new());
    }
}
