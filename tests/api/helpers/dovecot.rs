//! A real Dovecot IMAP server (Debian's `dovecot-imapd`, Dovecot 2.3) private to one test.
//!
//! Everything it needs is in a temporary directory: its configuration, sockets, state and log,
//! a passwd file with one user, and that user's maildir. It speaks implicit TLS ("imaps") only,
//! on a free port of 127.0.0.1, with the test certificate in tests/fixtures/imap (its own CA:
//! clients trust `ca_file`). Nothing system-wide is read or touched, and no systemd.
//!
//! As root (CI) Dovecot's processes and the maildir belong to `nobody`, since Dovecot will run
//! neither its login process nor a mail session as UID 0; as anyone else, all of it runs as
//! that user.

use std::{
    fs,
    os::unix::{
        fs::{PermissionsExt, chown},
        process::CommandExt,
    },
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

const DOVECOT: &str = "/usr/sbin/dovecot";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/imap");

pub const USER: &str = "bounces";
pub const PASSWORD: &str = "secret-imap";

/// Dovecot 2.3's syntax (2.4's differs a lot). `{dir}`, `{port}`, `{cert}`, `{key}`, `{user}`
/// and `{group}` are filled in by `start`.
///
/// - `chroot =`: the login process and anvil chroot by default, which only root may do.
/// - `auth_failure_delay = 0` and anvil's `anvil-auth-penalty` socket not created (mode 0):
///   no growing delay after a wrong password (2 s, 4 s, … per IP); a failed login still takes
///   about half a second, Dovecot's timer for answering failures.
/// - `inet_listener imap { port = 0 }`: no plain-text IMAP at all, only imaps.
/// - `mail_fsync = never`: a test's mail needs no durability.
const CONFIG: &str = r#"# Written by Nashra's tests (tests/api/dovecot.rs) for one test run.
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = nashra-test-{port}
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1

ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2

auth_mechanisms = plain login
auth_failure_delay = 0
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u {dir}/passwd
}

default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 1
first_valid_gid = 1

mail_location = maildir:{dir}/mail
mail_fsync = never

service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = {port}
    ssl = yes
  }
}
"#;

pub struct Dovecot {
    pub port: u16,
    pub user: &'static str,
    pub password: &'static str,
    /// The certificate Dovecot presents (for `localhost` and 127.0.0.1), to trust as a CA.
    pub ca_file: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
    /// Who Dovecot's processes run as: the maildir's files must be theirs.
    owner: Identity,
}

/// A user and group, by name for Dovecot's settings and by number for `chown`.
#[derive(Debug, Clone)]
struct Identity {
    user: String,
    group: String,
    uid: u32,
    gid: u32,
}

impl Identity {
    /// The current user, or `nobody` when that is root.
    fn for_dovecot() -> Identity {
        let root = unsafe { libc::geteuid() } == 0;
        let id = |flag: &str| {
            let mut cmd = Command::new("id");
            cmd.arg(flag);
            if root {
                cmd.arg("nobody");
            }
            let out = cmd.output().expect("run `id`");
            assert!(out.status.success(), "`id {flag}` failed: {out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        Identity {
            user: id("-un"),
            group: id("-gn"),
            uid: id("-u").parse().unwrap(),
            gid: id("-g").parse().unwrap(),
        }
    }

    fn owns(&self, path: &Path) {
        if unsafe { libc::geteuid() } == 0 {
            chown(path, Some(self.uid), Some(self.gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }
}

enum Started {
    Ready,
    /// Dovecot ended before listening: most likely its port was taken meanwhile.
    Exited(ExitStatus),
    TimedOut,
}

impl Dovecot {
    /// Starts a private Dovecot and waits until it listens.
    pub async fn start() -> Dovecot {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: install dovecot-imapd (apt-get install dovecot-imapd)"
        );
        let owner = Identity::for_dovecot();
        let dir = tempfile::Builder::new()
            .prefix("nashra-dovecot-")
            .tempdir()
            .expect("create a temp dir for Dovecot");
        let root = dir.path();
        // Dovecot's processes (`nobody` under root) must reach the passwd file and the maildir.
        fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
        let mail = root.join("mail");
        owner.owns(&create_dir(&mail));
        for sub in ["cur", "new", "tmp"] {
            owner.owns(&create_dir(&mail.join(sub)));
        }
        // user:password:uid:gid:gecos:home:shell (the password in clear: `scheme=PLAIN`).
        let passwd = root.join("passwd");
        fs::write(
            &passwd,
            format!(
                "{USER}:{PASSWORD}:{}:{}::{}::\n",
                owner.uid,
                owner.gid,
                mail.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&passwd, fs::Permissions::from_mode(0o644)).unwrap();

        // The port is free when we look, but something may take it before Dovecot binds it:
        // Dovecot then exits at once, and we try another.
        for attempt in 1..=3 {
            let port = free_port();
            let conf = root.join("dovecot.conf");
            fs::write(&conf, config(root, port, &owner)).unwrap();
            let out = fs::File::create(root.join("stderr.log")).unwrap();
            let mut child = Command::new(DOVECOT)
                .arg("-F")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                // Its own process group, so that drop can stop all of Dovecot's processes.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("start {DOVECOT}: {e}"));
            match wait_until_listening(&mut child, root, port).await {
                Started::Ready => {
                    return Dovecot {
                        port,
                        user: USER,
                        password: PASSWORD,
                        ca_file: Path::new(FIXTURES).join("cert.pem"),
                        dir,
                        child,
                        owner,
                    };
                }
                Started::Exited(status) if attempt < 3 => {
                    eprintln!("Dovecot on port {port} ended ({status}), trying another port");
                }
                Started::Exited(status) => {
                    panic!("Dovecot ended ({status}):\n{}", logs(root));
                }
                Started::TimedOut => {
                    stop(&mut child);
                    panic!(
                        "Dovecot did not listen on port {port} in 10 s:\n{}",
                        logs(root)
                    );
                }
            }
        }
        unreachable!()
    }

    /// Drops a raw RFC 5322 message into INBOX, unseen: a file in the maildir's new/, written in
    /// tmp/ first and then renamed, as maildir requires.
    pub fn deliver(&self, raw: &[u8]) {
        self.deliver_to("INBOX", raw)
    }

    /// The same into another folder, made if it is missing (Maildir++: `.<name>` with its
    /// own cur/, new/ and tmp/, which Dovecot finds as it lists or selects the folder).
    pub fn deliver_to(&self, folder: &str, raw: &[u8]) {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        // Maildir's unique name: seconds, then microseconds, process and a counter.
        let name = format!(
            "{}.M{:06}P{}Q{}.nashra-test",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mail = self.folder_dir(folder);
        if !mail.exists() {
            self.owner.owns(&create_dir(&mail));
            for sub in ["cur", "new", "tmp"] {
                self.owner.owns(&create_dir(&mail.join(sub)));
            }
        }
        let tmp = mail.join("tmp").join(&name);
        fs::write(&tmp, raw).unwrap();
        self.owner.owns(&tmp);
        fs::rename(&tmp, mail.join("new").join(&name)).unwrap();
    }

    /// The imaps URL for Nashra's configuration.
    pub fn url(&self) -> String {
        format!(
            "imaps://{}:{}@127.0.0.1:{}/INBOX",
            self.user, self.password, self.port
        )
    }

    /// For each message in a folder ("INBOX", "Processed", …), whether it is `\Seen`. A
    /// folder that does not exist has none. Read it while no IMAP command is changing it.
    /// (Dovecot moves a message from new/ to cur/ once a session has seen it, read or not:
    /// whether it was read is in the file name's flags, "<unique>:2,<flags>".)
    pub fn seen(&self, folder: &str) -> Vec<bool> {
        let dir = self.folder_dir(folder);
        ["new", "cur"]
            .iter()
            .flat_map(|sub| fs::read_dir(dir.join(sub)).into_iter().flatten())
            .map(|entry| {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                name.split_once(":2,")
                    .is_some_and(|(_, flags)| flags.contains('S'))
            })
            .collect()
    }

    /// Dovecot's log so far (logins, errors).
    pub fn log(&self) -> String {
        logs(self.dir.path())
    }

    /// Maildir++: INBOX is the maildir itself, another folder is ".<name>" inside it.
    fn folder_dir(&self, folder: &str) -> PathBuf {
        let mail = self.dir.path().join("mail");
        if folder.eq_ignore_ascii_case("INBOX") {
            mail
        } else {
            mail.join(format!(".{folder}"))
        }
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("Dovecot's log:\n{}", self.log());
        }
        stop(&mut self.child);
    }
}

/// Kills Dovecot's master and every process it forked (its process group), and reaps the
/// master. SIGKILL is immediate, where SIGTERM has the master take over a second to shut down.
fn stop(child: &mut Child) {
    unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
    let _ = child.wait();
}

fn config(dir: &Path, port: u16, owner: &Identity) -> String {
    let fixtures = Path::new(FIXTURES);
    CONFIG
        .replace("{dir}", &dir.display().to_string())
        .replace("{port}", &port.to_string())
        .replace("{cert}", &fixtures.join("cert.pem").display().to_string())
        .replace("{key}", &fixtures.join("key.pem").display().to_string())
        .replace("{user}", &owner.user)
        .replace("{group}", &owner.group)
}

fn create_dir(path: &Path) -> PathBuf {
    fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    path.to_path_buf()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Waits (10 s at most) until Dovecot listens. Its master writes run/master.pid only once it
/// has bound its ports (it exits if it cannot); the connection then only confirms it.
async fn wait_until_listening(child: &mut Child, dir: &Path, port: u16) -> Started {
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid_file = dir.join("run/master.pid");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Started::Exited(status);
        }
        if pid_file.exists()
            && tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        {
            return Started::Ready;
        }
        if Instant::now() > deadline {
            return Started::TimedOut;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What Dovecot wrote to its log file, and to stderr before its log process was up.
fn logs(dir: &Path) -> String {
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
    format!("{}{}", read("stderr.log"), read("dovecot.log"))
}
