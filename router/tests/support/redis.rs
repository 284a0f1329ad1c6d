//! A real `redis-server` (Debian package `redis-server`) for tests: a free loopback port, its
//! own data directory, AOF fsynced on every write; `stop` kills it (-9) and `start` runs it
//! again on the same port and directory (the AOF brings the data back).

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use beacon_e2e::{free_port, require_bin, wait_for, Server};

/// A redis-server on a free loopback port with its data directory; `stop` kills it (-9) and
/// `start` runs it again on the same port and directory (its AOF brings the data back).
pub struct Redis {
    server: Option<Server>,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub password: Option<String>,
    /// Extra `redis-server` arguments (e.g. `--replicaof 127.0.0.1 <port>`).
    pub args: Vec<String>,
}

impl Redis {
    pub fn new() -> Self {
        Self::with_password(None)
    }

    pub fn with_password(password: Option<&str>) -> Self {
        Self::with_args(password, &[])
    }

    /// A server started with extra arguments, kept across restarts.
    pub fn with_args(password: Option<&str>, args: &[&str]) -> Self {
        let mut r = Redis {
            server: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir for redis"),
            password: password.map(str::to_string),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        r.start();
        r
    }

    pub fn start(&mut self) {
        let mut cmd = Command::new(require_bin("redis-server", "redis-server"));
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--dir"])
            .arg(self.dir.path());
        if let Some(pw) = &self.password {
            cmd.arg("--requirepass").arg(pw);
        }
        cmd.args(&self.args);
        let mut server =
            Server::start("redis-server", cmd, self.dir.path()).expect("start redis-server");
        let port = self.port;
        let ready = wait_for("redis-server to listen", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        if let Err(e) = ready {
            let _ = server.check_running();
            panic!("{e}; log:\n{}", server.log());
        }
        self.server = Some(server);
    }

    pub fn stop(&mut self) {
        // Server's drop kills (SIGKILL) and reaps the process.
        self.server = None;
    }

    /// The process id (to stop or kill it from a test).
    pub fn pid(&self) -> u32 {
        self.server.as_ref().expect("redis-server running").pid()
    }

    /// Runs a command on this server and returns its reply.
    pub fn cmd<T: ::redis::FromRedisValue>(&self, args: &[&str]) -> ::redis::RedisResult<T> {
        let client = ::redis::Client::open(self.url())?;
        let mut c = client.get_connection_with_timeout(Duration::from_secs(5))?;
        let mut cmd = ::redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut c)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn location(&self) -> String {
        self.url()
    }
}
