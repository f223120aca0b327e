//! A small HTTP/1.1 file server on 127.0.0.1 for tests: GET and HEAD, keep-alive,
//! `Range: bytes=N-` / `bytes=N-M`, per-path request counts, and faults injected at run time.
//! One thread accepts, one thread serves each connection; everything stops when the
//! [`Server`] is dropped.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a faulty path does instead of being served normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status code (e.g. 500, 503) and a short text body.
    Status(u16),
    /// Answer 404.
    NotFound,
    /// Announce the full Content-Length, send half the body, then close the connection.
    DropMidBody,
    /// A well-formed response with only the first half of the file.
    Truncate,
    /// The full length, with the middle byte flipped.
    Corrupt,
    /// Wait this long before answering normally.
    Delay(Duration),
    /// Announce the full Content-Length, send half the body, then send nothing more for this
    /// long (the connection stays open), then close.
    Stall(Duration),
}

/// Random faults on a share of the requests (see [`Server::chaos`]).
#[derive(Debug)]
struct Chaos {
    pattern: String,
    percent: u32,
    faults: Vec<Fault>,
    state: u64,
}

#[derive(Debug)]
struct Rule {
    pattern: String,
    fault: Fault,
    /// `None`: forever.
    remaining: Option<u32>,
}

#[derive(Debug, Default)]
struct Shared {
    root: PathBuf,
    stop: AtomicBool,
    rules: Mutex<Vec<Rule>>,
    chaos: Mutex<Option<Chaos>>,
    counts: Mutex<BTreeMap<String, usize>>,
    log: Mutex<Vec<String>>,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // a panicking handler thread must not take the test's assertions down with it
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running server. Dropping it stops the accept loop and every connection.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("root", &self.shared.root)
            .finish()
    }
}

/// The URL of a local port that nothing listens on (bound, then released): a mirror that is down.
pub fn unused_local_url() -> io::Result<String> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    drop(l);
    Ok(format!("http://127.0.0.1:{port}"))
}

impl Server {
    /// Serves `root` on 127.0.0.1 on a free port.
    pub fn start(root: impl AsRef<Path>) -> io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            root: root.as_ref().to_path_buf(),
            ..Shared::default()
        });
        let sh = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name(format!("testkit-http-{}", addr.port()))
            .spawn(move || accept_loop(listener, sh))?;
        Ok(Server {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Injects `fault` for the next `times` requests whose path contains `pattern`.
    /// Rules are tried in the order they were added; the first live match applies.
    pub fn fail(&self, pattern: &str, fault: Fault, times: u32) {
        lock(&self.shared.rules).push(Rule {
            pattern: pattern.into(),
            fault,
            remaining: Some(times),
        });
    }

    /// Injects `fault` for every request whose path contains `pattern`, until cleared.
    pub fn fail_always(&self, pattern: &str, fault: Fault) {
        lock(&self.shared.rules).push(Rule {
            pattern: pattern.into(),
            fault,
            remaining: None,
        });
    }

    /// A bad mirror: each request whose path contains `pattern` (and that no rule of
    /// [`Server::fail`] matches) gets, with probability `percent` %, one of `faults` picked at
    /// random. The choices come from a generator seeded with `seed`.
    pub fn chaos(&self, seed: u64, pattern: &str, percent: u32, faults: Vec<Fault>) {
        *lock(&self.shared.chaos) = Some(Chaos {
            pattern: pattern.into(),
            percent,
            faults,
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        });
    }

    /// Removes every fault rule and the chaos.
    pub fn clear_faults(&self) {
        lock(&self.shared.rules).clear();
        *lock(&self.shared.chaos) = None;
    }

    /// How many requests (GET or HEAD, faulty or not) had a path containing `pattern`.
    pub fn requests(&self, pattern: &str) -> usize {
        lock(&self.shared.counts)
            .iter()
            .filter(|(p, _)| p.contains(pattern))
            .map(|(_, n)| n)
            .sum()
    }

    /// How many requests had exactly this path (`/dists/...`).
    pub fn requests_exact(&self, path: &str) -> usize {
        lock(&self.shared.counts).get(path).copied().unwrap_or(0)
    }

    /// Every request so far as `"<METHOD> <path> -> <status>"`, in arrival order.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// Forgets counts and the log (fault rules stay).
    pub fn reset_counts(&self) {
        lock(&self.shared.counts).clear();
        lock(&self.shared.log).clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let conns = std::mem::take(&mut *lock(&self.shared.conns));
        for h in conns {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let sh = Arc::clone(&shared);
                let h = std::thread::Builder::new()
                    .name("testkit-http-conn".into())
                    .spawn(move || serve_connection(stream, &sh));
                if let Ok(h) = h {
                    let mut conns = lock(&shared.conns);
                    conns.retain(|h| !h.is_finished());
                    conns.push(h);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    range: Option<(u64, Option<u64>)>,
    keep_alive: bool,
}

const MAX_HEAD: usize = 64 * 1024;
const IDLE: Duration = Duration::from_secs(30);

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf: Vec<u8> = Vec::new();
    let mut last = Instant::now();
    loop {
        if shared.stop.load(Ordering::SeqCst) || last.elapsed() > IDLE {
            break;
        }
        // one request head
        let end = match find_head_end(&buf) {
            Some(e) => e,
            None => {
                if buf.len() > MAX_HEAD {
                    let _ = respond_plain(&mut stream, 431, "request head too large", false, true);
                    break;
                }
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        last = Instant::now();
                    }
                    Err(e)
                        if e.kind() == io::ErrorKind::WouldBlock
                            || e.kind() == io::ErrorKind::TimedOut
                            || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
                continue;
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let Some(req) = parse_request(&head) else {
            let _ = respond_plain(&mut stream, 400, "bad request", false, true);
            break;
        };
        match handle(&mut stream, shared, &req) {
            Ok(true) if req.keep_alive => {}
            _ => break,
        }
        last = Instant::now();
    }
    let _ = stream.shutdown(Shutdown::Both);
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse_request(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?;
    let version = first.next().unwrap_or("HTTP/1.0");
    let mut keep_alive = version == "HTTP/1.1";
    let mut range = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("connection") {
            if v.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if v.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        } else if k.eq_ignore_ascii_case("range") {
            range = parse_range(v);
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    Some(Request {
        method,
        path: percent_decode(path),
        range,
        keep_alive,
    })
}

/// `bytes=N-` or `bytes=N-M` (one range only; anything else is ignored, as servers may).
fn parse_range(v: &str) -> Option<(u64, Option<u64>)> {
    let spec = v.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let start = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => None,
        e => Some(e.parse().ok()?),
    };
    Some((start, end))
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn respond_plain(
    s: &mut TcpStream,
    code: u16,
    body: &str,
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        status_text(code),
        body.len(),
        if close { "close" } else { "keep-alive" }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    s.write_all(&out)?;
    s.flush()
}

/// Takes the fault that applies to `path`, if any, and uses one of its lives.
fn take_fault(shared: &Shared, path: &str) -> Option<Fault> {
    let mut rules = lock(&shared.rules);
    if let Some(r) = rules
        .iter_mut()
        .find(|r| path.contains(&r.pattern) && r.remaining != Some(0))
    {
        if let Some(n) = &mut r.remaining {
            *n -= 1;
        }
        return Some(r.fault.clone());
    }
    drop(rules);
    let mut chaos = lock(&shared.chaos);
    let c = chaos.as_mut()?;
    if !path.contains(&c.pattern) || c.faults.is_empty() {
        return None;
    }
    let mut next = || {
        c.state ^= c.state << 13;
        c.state ^= c.state >> 7;
        c.state ^= c.state << 17;
        c.state
    };
    if next() % 100 >= u64::from(c.percent) {
        return None;
    }
    let i = (next() % c.faults.len() as u64) as usize;
    c.faults.get(i).cloned()
}

fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    let p = root.join(rel);
    p.is_file().then_some(p)
}

/// Answers one request. `Ok(true)`: the connection may be reused.
fn handle(s: &mut TcpStream, shared: &Shared, req: &Request) -> io::Result<bool> {
    *lock(&shared.counts).entry(req.path.clone()).or_insert(0) += 1;
    let log = |status: &str| {
        lock(&shared.log).push(format!("{} {} -> {status}", req.method, req.path));
    };
    let close = !req.keep_alive;
    let head_only = req.method == "HEAD";
    if req.method != "GET" && !head_only {
        log("405");
        respond_plain(s, 405, "only GET and HEAD", false, close)?;
        return Ok(true);
    }
    let mut fault = take_fault(shared, &req.path);
    if let Some(Fault::Delay(d)) = fault {
        std::thread::sleep(d);
        fault = None;
    }
    match fault {
        Some(Fault::Status(code)) => {
            log(&code.to_string());
            respond_plain(s, code, "injected fault", head_only, close)?;
            return Ok(true);
        }
        Some(Fault::NotFound) => {
            log("404 (injected)");
            respond_plain(s, 404, "not found", head_only, close)?;
            return Ok(true);
        }
        _ => {}
    }
    let Some(file) = resolve(&shared.root, &req.path) else {
        log("404");
        respond_plain(s, 404, "not found", head_only, close)?;
        return Ok(true);
    };
    let mut body = match std::fs::read(&file) {
        Ok(b) => b,
        Err(_) => {
            log("404");
            respond_plain(s, 404, "not found", head_only, close)?;
            return Ok(true);
        }
    };
    match fault {
        Some(Fault::Truncate) => body.truncate(body.len() / 2),
        Some(Fault::Corrupt) => {
            let mid = body.len() / 2;
            if let Some(b) = body.get_mut(mid) {
                *b ^= 0xff;
            }
        }
        _ => {}
    }
    let total = body.len() as u64;
    let (code, from, to) = match req.range {
        None => (200, 0, total),
        Some((start, _)) if start >= total => {
            log("416");
            let h = format!(
                "HTTP/1.1 416 {}\r\nContent-Range: bytes */{total}\r\nContent-Length: 0\r\nConnection: {}\r\n\r\n",
                status_text(416),
                if close { "close" } else { "keep-alive" }
            );
            s.write_all(h.as_bytes())?;
            return Ok(true);
        }
        Some((start, end)) => {
            let end = end.map_or(total, |e| (e + 1).min(total));
            if end <= start {
                (200, 0, total)
            } else {
                (206, start, end)
            }
        }
    };
    let part = &body[from as usize..to as usize];
    let mut h = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: application/octet-stream\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\nConnection: {}\r\n",
        status_text(code),
        part.len(),
        if close { "close" } else { "keep-alive" }
    );
    if code == 206 {
        h.push_str(&format!(
            "Content-Range: bytes {from}-{}/{total}\r\n",
            to - 1
        ));
    }
    h.push_str("\r\n");
    s.write_all(h.as_bytes())?;
    if head_only {
        log(&format!("{code}"));
        s.flush()?;
        return Ok(true);
    }
    if let Some(Fault::Stall(d)) = fault {
        log(&format!("{code} (stalled mid-body)"));
        s.write_all(&part[..part.len() / 2])?;
        s.flush()?;
        let until = Instant::now() + d;
        while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = s.shutdown(Shutdown::Both);
        return Ok(false);
    }
    if fault == Some(Fault::DropMidBody) {
        log(&format!("{code} (dropped mid-body)"));
        s.write_all(&part[..part.len() / 2])?;
        s.flush()?;
        let _ = s.shutdown(Shutdown::Both);
        return Ok(false);
    }
    log(&format!("{code}"));
    s.write_all(part)?;
    s.flush()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw HTTP exchange: sends `req`, reads until the server closes (ask with Connection: close).
    fn raw(addr: SocketAddr, req: &str) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(req.as_bytes()).expect("send");
        let mut out = Vec::new();
        s.read_to_end(&mut out).expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    fn server() -> (tempfile::TempDir, Server) {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("dists/x")).expect("mkdir");
        std::fs::write(d.path().join("dists/x/file"), b"0123456789").expect("write");
        let s = Server::start(d.path()).expect("start");
        (d, s)
    }

    #[test]
    fn get_head_range_keepalive() {
        let (_d, s) = server();
        let r = raw(
            s.addr(),
            "GET /dists/x/file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\n0123456789"), "{r}");
        let r = raw(
            s.addr(),
            "HEAD /dists/x/file HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(
            r.contains("Content-Length: 10\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        let r = raw(
            s.addr(),
            "GET /dists/x/file HTTP/1.1\r\nRange: bytes=4-\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 206"), "{r}");
        assert!(r.contains("Content-Range: bytes 4-9/10\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\n456789"), "{r}");
        let r = raw(
            s.addr(),
            "GET /dists/x/file HTTP/1.1\r\nRange: bytes=10-\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 416"), "{r}");
        let r = raw(
            s.addr(),
            "GET /../etc/passwd HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        // two requests on one connection (pipelined), the second closes
        let r = raw(
            s.addr(),
            "GET /dists/x/file HTTP/1.1\r\n\r\nGET /dists/x/file HTTP/1.1\r\nRange: bytes=8-\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.matches("HTTP/1.1 ").count(), 2, "{r}");
        assert!(r.ends_with("89"), "{r}");
        assert_eq!(s.requests_exact("/dists/x/file"), 6);
        assert_eq!(s.requests("x/"), 6);
        assert_eq!(s.requests("/etc/passwd"), 1);
        assert_eq!(s.log().len(), 7);
    }

    #[test]
    fn faults() {
        let (_d, s) = server();
        let get = "GET /dists/x/file HTTP/1.1\r\nConnection: close\r\n\r\n";
        s.fail("x/file", Fault::Status(500), 2);
        assert!(raw(s.addr(), get).starts_with("HTTP/1.1 500"));
        assert!(raw(s.addr(), get).starts_with("HTTP/1.1 500"));
        assert!(raw(s.addr(), get).starts_with("HTTP/1.1 200"));
        s.fail("file", Fault::Truncate, 1);
        let r = raw(s.addr(), get);
        assert!(
            r.contains("Content-Length: 5\r\n") && r.ends_with("01234"),
            "{r}"
        );
        s.fail("file", Fault::Corrupt, 1);
        let r = raw(s.addr(), get);
        assert!(
            r.contains("Content-Length: 10\r\n") && !r.ends_with("0123456789"),
            "{r}"
        );
        s.fail("file", Fault::DropMidBody, 1);
        let r = raw(s.addr(), get);
        assert!(
            r.contains("Content-Length: 10\r\n") && r.ends_with("\r\n\r\n01234"),
            "{r}"
        );
        s.fail_always("x/", Fault::NotFound);
        assert!(raw(s.addr(), get).starts_with("HTTP/1.1 404"));
        assert!(raw(s.addr(), get).starts_with("HTTP/1.1 404"));
        s.clear_faults();
        assert!(raw(s.addr(), get).starts_with("HTTP/1.1 200"));
        assert_eq!(s.requests("file"), 9);
        s.reset_counts();
        assert_eq!(s.requests("file"), 0);
    }

    #[test]
    fn stops_on_drop() {
        let (_d, s) = server();
        let addr = s.addr();
        // an idle keep-alive connection must not keep the server alive
        let mut idle = TcpStream::connect(addr).expect("connect");
        idle.write_all(b"GET /dists/x/file HTTP/1.1\r\n\r\n")
            .expect("send");
        let t = Instant::now();
        drop(s);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(TcpStream::connect(addr).is_err());
        let mut rest = Vec::new();
        let _ = idle.read_to_end(&mut rest);
    }
}
