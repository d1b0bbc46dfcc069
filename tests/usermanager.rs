//! systemd's own user manager as the oracle of what a service sees: the
//! same unit files run under `systemd --user` and under `flint run --user`,
//! each in a private mount namespace with a fresh `/run` (as the reference's
//! behaviour oracle describes), and a probe records, per service, the
//! process (ids and their relations, working directory, umask, signal mask
//! and ignored signals, capabilities, resource limits, nice value, OOM score
//! adjustment, scheduling policy), its whole environment, its argv after
//! specifiers and `$VAR` expansion, and every open fd (kind, family, type,
//! listening state, local address, node mode and owner, blocking and
//! close-on-exec flags). The two records must be equal up to what differs
//! by nature (pids, ports, invocation ids, where the notify socket lives)
//! and up to what systemd changed after the version installed here (252,
//! Debian 12): the user state directory (`~/.local/state` since 254), the
//! compiled-in `PATH` (Debian 12 still lists `/sbin:/bin`), `LISTEN_PIDFDID`
//! (259), the order of fds from several socket units (undefined in
//! systemd), and output that systemd sends to a journal this namespace does
//! not have.
//!
//! Both managers start from the same environment, which carries variables
//! a manager must not hand on (`JOURNAL_STREAM`, `INVOCATION_ID`,
//! `WATCHDOG_USEC`, ...), and both run the environment generators of
//! `$SYSTEMD_ENVIRONMENT_GENERATOR_PATH` (one of the test's own, then the
//! machine's, among them `30-systemd-environment-d-generator`).
//!
//! Needs root (a mount namespace and a tmpfs on `/run`), systemd, python3.

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Records one JSON line per start into the file named by its first
/// argument, then takes what triggered an `Accept=no` start (so that the
/// socket does not trigger again) and says `READY=1` where asked.
const PROBE: &str = r#"
import json, os, sys, socket, stat, fcntl, resource
def link(fd):
    try:
        t = os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        return None
    for k in ("socket:", "pipe:", "anon_inode:"):
        if t.startswith(k):
            return k[:-1]
    return t
FAM = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}
TYP = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram", socket.SOCK_SEQPACKET: "seqpacket"}
SOCKOPTS = [("rcvbuf", socket.SOL_SOCKET, socket.SO_RCVBUF), ("sndbuf", socket.SOL_SOCKET, socket.SO_SNDBUF),
            ("keepalive", socket.SOL_SOCKET, socket.SO_KEEPALIVE), ("reuseport", socket.SOL_SOCKET, socket.SO_REUSEPORT),
            ("broadcast", socket.SOL_SOCKET, socket.SO_BROADCAST), ("passcred", socket.SOL_SOCKET, socket.SO_PASSCRED),
            ("priority", socket.SOL_SOCKET, socket.SO_PRIORITY), ("mark", socket.SOL_SOCKET, 36),
            ("nodelay", socket.IPPROTO_TCP, socket.TCP_NODELAY), ("keepidle", socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            ("keepintvl", socket.IPPROTO_TCP, socket.TCP_KEEPINTVL), ("keepcnt", socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            ("defer_accept", socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT), ("v6only", socket.IPPROTO_IPV6, socket.IPV6_V6ONLY),
            ("tos", socket.IPPROTO_IP, socket.IP_TOS), ("ttl", socket.IPPROTO_IP, socket.IP_TTL),
            ("freebind", socket.IPPROTO_IP, 15), ("transparent", socket.IPPROTO_IP, 19),
            ("passsec", socket.SOL_SOCKET, 34), ("pktinfo", socket.IPPROTO_IP, 8)]
def fdinfo(fd):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    try:
        seals = fcntl.fcntl(fd, 1034)  # F_GET_SEALS
    except OSError:
        seals = None
    info = {"nonblock": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK), "seals": seals,
            "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
            "link": link(fd)}
    if stat.S_ISSOCK(st.st_mode):
        s = socket.socket(fileno=fd)
        info["family"] = FAM.get(s.family, str(s.family))
        info["type"] = TYP.get(s.type, str(s.type))
        info["listening"] = bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        try:
            loc = s.getsockname()
            info["local"] = str(loc)
            if isinstance(loc, str) and loc.startswith("/"):
                n = os.stat(loc)
                info["node"] = [oct(n.st_mode), n.st_uid, n.st_gid]
        except OSError:
            pass
        try:
            s.getpeername()
            info["connected"] = True
        except OSError:
            info["connected"] = False
        opts = {}
        for name, level, opt in SOCKOPTS:
            try:
                opts[name] = s.getsockopt(level, opt)
            except OSError:
                pass
        info["options"] = opts
        s.detach()
    elif stat.S_ISFIFO(st.st_mode):
        info["type"] = "fifo"
        if info["link"] != "pipe":
            info["node"] = [oct(st.st_mode), st.st_uid, st.st_gid]
    elif stat.S_ISCHR(st.st_mode):
        info["type"] = "char"
    else:
        info["type"] = "other"
    return info
def process():
    import ctypes, platform
    libc = ctypes.CDLL(None, use_errno=True)
    out = {"affinity": sorted(os.sched_getaffinity(0)),
           "coredump_filter": open("/proc/self/coredump_filter").read().strip()}
    for name, op in (("dumpable", 3), ("securebits", 27), ("timerslack", 30), ("subreaper", 37)):
        if name == "subreaper":
            v = ctypes.c_int(0)
            libc.prctl(op, ctypes.byref(v), 0, 0, 0)
            out[name] = v.value
        else:
            out[name] = libc.prctl(op, 0, 0, 0, 0)
    if platform.machine() == "x86_64":
        out["ioprio"] = libc.syscall(252, 1, 0)
    return out
status = {}
for line in open("/proc/self/status"):
    k, _, v = line.partition(":")
    if k in ("Umask", "SigBlk", "SigIgn", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
        status[k] = v.strip()
limits = {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")}
report = {"pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0), "sid": os.getsid(0),
          "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
          "cwd": os.getcwd(), "argv": sys.argv[2:], "env": dict(os.environ), "status": status,
          "limits": limits, "nice": os.getpriority(os.PRIO_PROCESS, 0),
          "oom": open("/proc/self/oom_score_adj").read().strip(),
          "sched": os.sched_getscheduler(0), "process": process(),
          "fds": {str(fd): i for fd in range(64) if (i := fdinfo(fd)) is not None}}
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(report) + "\n")
for fd, i in report["fds"].items():
    fd = int(fd)
    if fd < 3 and "LISTEN_FDS" in os.environ:
        continue
    try:
        if i.get("listening"):
            s = socket.socket(fileno=fd); s.setblocking(False)
            try: s.accept()[0].close()
            except OSError: pass
            s.detach()
        elif i.get("type") == "dgram" and not i.get("connected"):
            s = socket.socket(fileno=fd); s.setblocking(False)
            try: s.recv(65536)
            except OSError: pass
            s.detach()
        elif i.get("type") == "fifo" and i.get("link") != "pipe":
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
            try: os.read(fd, 65536)
            except OSError: pass
    except OSError:
        pass
n = os.environ.get("NOTIFY_SOCKET")
if n:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"READY=1", "\0" + n[1:] if n.startswith("@") else n)
"#;

/// An environment generator of the test's own: one variable, and one built
/// on what the manager's block holds.
const GENERATOR: &str = "#!/bin/sh\necho FROM_GENERATOR=1\necho \"CHAINED=$HOME:seen\"\n";

/// What starts one case's service.
enum Trigger {
    Tcp(String),
    Unix(PathBuf),
    Udp(u16),
    Fifo(PathBuf),
    /// The record comes from the socket's own start.
    Nothing,
}

struct Case {
    /// The service's record file (`OUT/NAME.jsonl`).
    name: &'static str,
    /// Unit files: name and text (`{probe}`, `{out}`, `{dir}` substituted).
    units: Vec<(String, String)>,
    trigger: Trigger,
    /// Its output goes to the journal, which the oracle's namespace lacks.
    journal_output: bool,
    /// fds from several socket units, whose order systemd leaves undefined.
    unordered_fds: bool,
    /// Recorded by a stop command, once the manager has stopped everything.
    at_stop: bool,
}

fn cases(dir: &Path) -> Vec<Case> {
    let p = [
        common::free_port(),
        common::free_port(),
        common::free_port(),
    ];
    let p3 = common::free_port();
    let udp = common::free_udp_port();
    let p5 = common::free_port();
    let p6 = common::free_port();
    let udp2 = common::free_udp_port();
    let p7 = common::free_port();
    let udp3 = common::free_udp_port();
    let p8 = common::free_port();
    let p9 = common::free_port();
    let d = dir.display();
    let exec = |name: &str, args: &str| {
        format!("ExecStart=/usr/bin/python3 {{probe}} {{out}}/{name}.jsonl {args}\n")
    };
    vec![
        Case {
            name: "inetd",
            units: vec![
                (
                    "inetd.socket".into(),
                    format!("[Socket]\nListenStream=127.0.0.1:{}\nAccept=yes\n", p[0]),
                ),
                (
                    "inetd@.service".into(),
                    format!("[Service]\nStandardInput=socket\n{}", exec("inetd", "%n %i %I %p %j")),
                ),
            ],
            trigger: Trigger::Tcp(format!("127.0.0.1:{}", p[0])),
            journal_output: false,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "fd3",
            units: vec![
                (
                    "fd3.socket".into(),
                    format!("[Socket]\nListenStream=[::1]:{}\nAccept=yes\n", p[1]),
                ),
                ("fd3@.service".into(), format!("[Service]\n{}", exec("fd3", "%i"))),
            ],
            trigger: Trigger::Tcp(format!("[::1]:{}", p[1])),
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "unixyes",
            units: vec![
                (
                    "unixyes.socket".into(),
                    format!("[Socket]\nListenStream={d}/u.sock\nAccept=yes\n"),
                ),
                ("unixyes@.service".into(), format!("[Service]\n{}", exec("unixyes", "%i"))),
            ],
            trigger: Trigger::Unix(dir.join("u.sock")),
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "multi",
            units: vec![
                (
                    "multi.socket".into(),
                    format!(
                        "[Socket]\nListenStream=127.0.0.1:{}\nListenDatagram=127.0.0.1:{udp}\n\
                         ListenFIFO={d}/f.fifo\nListenSequentialPacket={d}/q.sock\nFileDescriptorName=m\n",
                        p[2]
                    ),
                ),
                (
                    "multi.service".into(),
                    format!(
                        "[Service]\nType=notify\nNonBlocking=yes\nEnvironment=A=1 \"B=two words\"\n\
                         UnsetEnvironment=LANG\nWorkingDirectory={d}\nUMask=0027\nNice=5\n\
                         LimitNOFILE=4096:8192\nOOMScoreAdjust=200\nIgnoreSIGPIPE=no\n{}",
                        exec("multi", "")
                    ),
                ),
            ],
            trigger: Trigger::Tcp(format!("127.0.0.1:{}", p[2])),
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "stdin",
            units: vec![
                ("stdin.socket".into(), format!("[Socket]\nListenStream=127.0.0.1:{p3}\n")),
                (
                    "stdin.service".into(),
                    format!(
                        "[Service]\nStandardInput=socket\nStandardOutput=inherit\n{}",
                        exec("stdin", "")
                    ),
                ),
            ],
            trigger: Trigger::Tcp(format!("127.0.0.1:{p3}")),
            journal_output: false,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "specifiers",
            units: vec![
                ("specifiers.socket".into(), format!("[Socket]\nListenStream={d}/spec.sock\n")),
                (
                    "specifiers.service".into(),
                    format!(
                        "[Service]\nStandardOutput=null\nStandardError=null\n{}",
                        exec(
                            "specifiers",
                            "%n %N %p %f %t S=%S %C L=%L %h %u %U %g %G %H %l %y %Y %E"
                        )
                    ),
                ),
            ],
            trigger: Trigger::Unix(dir.join("spec.sock")),
            journal_output: false,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "two",
            units: vec![
                (
                    "two-a.socket".into(),
                    format!("[Socket]\nListenStream=127.0.0.1:{p5}\nFileDescriptorName=a\nService=two.service\n"),
                ),
                (
                    "two-b.socket".into(),
                    format!(
                        "[Socket]\nListenStream={d}/sub/b.sock\nSocketMode=0600\nDirectoryMode=0750\n\
                         Symlinks={d}/b-link.sock\nFileDescriptorName=b\nService=two.service\n"
                    ),
                ),
                (
                    "two.service".into(),
                    format!(
                        "[Service]\nEnvironment=X=%n FOO=bar\nEnvironmentFile=-{d}/missing.env\n\
                         EnvironmentFile={d}/vars.env\nPassEnvironment=HOME NOPE\n\
                         RuntimeDirectory=rt-two\nStateDirectory=st-two\nCacheDirectory=ca-two\n\
                         LogsDirectory=lo-two\nConfigurationDirectory=co-two\nWatchdogSec=30\n\
                         Type=notify\nNotifyAccess=all\nLimitCORE=infinity\n\
                         ExecStart=@/usr/bin/python3 py3 {{probe}} {{out}}/two.jsonl $FOO ${{X}} \"$Q\" $$ %%\n"
                    ),
                ),
            ],
            trigger: Trigger::Tcp(format!("127.0.0.1:{p5}")),
            journal_output: true,
            unordered_fds: true,
            at_stop: false,
        },
        Case {
            name: "fifo",
            units: vec![
                ("fifo.socket".into(), format!("[Socket]\nListenFIFO={d}/f2.fifo\nSocketMode=0640\n")),
                (
                    "fifo.service".into(),
                    "[Service]\nStandardOutput=null\nExecStart=:/usr/bin/python3 {probe} {out}/fifo.jsonl $HOME\n"
                        .into(),
                ),
            ],
            trigger: Trigger::Fifo(dir.join("f2.fifo")),
            journal_output: false,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "outsock",
            units: vec![
                (
                    "outsock.socket".into(),
                    format!("[Socket]\nListenStream=127.0.0.1:{p6}\nAccept=yes\n"),
                ),
                (
                    "outsock@.service".into(),
                    format!(
                        "[Service]\nStandardOutput=socket\nStandardError=inherit\n{}",
                        exec("outsock", "")
                    ),
                ),
            ],
            trigger: Trigger::Tcp(format!("127.0.0.1:{p6}")),
            journal_output: false,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "options",
            units: vec![
                (
                    "options.socket".into(),
                    format!(
                        "[Socket]\nListenStream=[::]:{p7}\nBindIPv6Only=both\nListenStream=@flint-um-{p7}\n\
                         ListenDatagram=127.0.0.1:{udp3}\nReceiveBuffer=262144\nSendBuffer=131072\n\
                         KeepAlive=yes\nKeepAliveTimeSec=77\nKeepAliveIntervalSec=11\nKeepAliveProbes=5\n\
                         NoDelay=yes\nDeferAcceptSec=3\nReusePort=yes\nBroadcast=yes\nPassCredentials=yes\n\
                         Priority=4\nMark=7\nIPTOS=16\nIPTTL=33\nFreeBind=yes\nTransparent=yes\n\
                         PassPacketInfo=yes\nBacklog=17\n"
                    ),
                ),
                ("options.service".into(), format!("[Service]\n{}", exec("options", ""))),
            ],
            trigger: Trigger::Tcp(format!("127.0.0.1:{p7}")),
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "stdio",
            units: vec![
                ("stdio.socket".into(), format!("[Socket]\nListenStream={d}/stdio.sock\n")),
                (
                    "stdio.service".into(),
                    format!(
                        "[Service]\nStandardInputText=hello\nStandardOutput=file:{d}/stdio.out\n\
                         StandardError=append:{d}/stdio.err\nWorkingDirectory=~\n\
                         ExecStart=+/usr/bin/python3 {{probe}} {{out}}/stdio.jsonl\n"
                    ),
                ),
            ],
            trigger: Trigger::Unix(dir.join("stdio.sock")),
            journal_output: false,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "onfailure",
            units: vec![
                (
                    "fails.socket".into(),
                    format!("[Socket]\nListenStream=127.0.0.1:{p8}\nAccept=yes\n"),
                ),
                (
                    "fails@.service".into(),
                    "[Unit]\nOnFailure=on-failure.service\n[Service]\nStandardInput=socket\n\
                     ExecStart=/bin/sh -c 'echo $INVOCATION_ID > {out}/fails.invocation; exit 3'\n"
                        .into(),
                ),
                (
                    "on-failure.service".into(),
                    format!(
                        "[Service]\nType=oneshot\n{}\
                         ExecStopPost=/usr/bin/python3 {{probe}} {{out}}/onfailure-stop.jsonl\n",
                        exec("onfailure", "")
                    ),
                ),
            ],
            trigger: Trigger::Tcp(format!("127.0.0.1:{p8}")),
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "onsuccess",
            units: vec![
                (
                    "succeeds.socket".into(),
                    format!("[Socket]\nListenStream={d}/ok.sock\nAccept=yes\n"),
                ),
                (
                    "succeeds@.service".into(),
                    "[Unit]\nOnSuccess=on-success.service\n[Service]\nStandardInput=socket\n\
                     ExecStart=/bin/sh -c 'kill -TERM $$$$'\nSuccessExitStatus=TERM\n"
                        .into(),
                ),
                (
                    "on-success.service".into(),
                    format!("[Service]\nType=oneshot\n{}", exec("onsuccess", "")),
                ),
            ],
            trigger: Trigger::Unix(dir.join("ok.sock")),
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "stoppost",
            units: vec![
                (
                    "stoppost.socket".into(),
                    format!("[Socket]\nListenStream=127.0.0.1:{p9}\nAccept=yes\n"),
                ),
                (
                    "stoppost@.service".into(),
                    "[Service]\nStandardInput=socket\nExecStart=/bin/sh -c 'exit 4'\n\
                     ExecStopPost=/usr/bin/python3 {probe} {out}/stoppost.jsonl\n"
                        .into(),
                ),
            ],
            trigger: Trigger::Tcp(format!("127.0.0.1:{p9}")),
            journal_output: false,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "startpre",
            units: vec![
                (
                    "startpre.socket".into(),
                    format!("[Socket]\nListenStream={d}/pre.sock\nAccept=yes\n"),
                ),
                (
                    "startpre@.service".into(),
                    "[Service]\nStandardInput=socket\nStandardError=null\n\
                     ExecStartPre=/usr/bin/python3 {probe} {out}/startpre.jsonl %i\nExecStart=/bin/true\n"
                        .into(),
                ),
            ],
            trigger: Trigger::Unix(dir.join("pre.sock")),
            journal_output: false,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "sockethook",
            units: vec![
                (
                    "sockethook.socket".into(),
                    format!(
                        "[Socket]\nListenStream={d}/hook.sock\n\
                         ExecStartPost=/usr/bin/python3 {{probe}} {{out}}/sockethook.jsonl %n\n"
                    ),
                ),
                ("sockethook.service".into(), "[Service]\nExecStart=/bin/true\n".into()),
            ],
            trigger: Trigger::Nothing,
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            // Started by a timer: TRIGGER_UNIT and the trigger's times.
            name: "timed",
            units: vec![
                (
                    "timed.timer".into(),
                    "[Timer]\nOnActiveSec=1s\nAccuracySec=1us\n".into(),
                ),
                (
                    "timed.service".into(),
                    format!("[Service]\nType=oneshot\n{}", exec("timed", "%n")),
                ),
            ],
            trigger: Trigger::Nothing,
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            // Started by a path unit whose path exists at its start:
            // TRIGGER_UNIT and TRIGGER_PATH (the path stays, so the second
            // trigger hits the limit of one).
            name: "pathed",
            units: vec![
                (
                    "pathed.path".into(),
                    format!(
                        "[Path]\nPathExists={d}/pathed.flag\nTriggerLimitBurst=1\n\
                         TriggerLimitIntervalSec=1h\n"
                    ),
                ),
                (
                    "pathed.service".into(),
                    format!("[Service]\nType=oneshot\n{}", exec("pathed", "%n")),
                ),
            ],
            trigger: Trigger::Nothing,
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "execstop",
            units: vec![
                ("execstop.socket".into(), format!("[Socket]\nListenStream={d}/stop.sock\n")),
                (
                    "execstop.service".into(),
                    "[Service]\nExecStart=/bin/sleep 120\n\
                     ExecStop=/usr/bin/python3 {probe} {out}/execstop.jsonl\n"
                        .into(),
                ),
            ],
            trigger: Trigger::Unix(dir.join("stop.sock")),
            journal_output: true,
            unordered_fds: false,
            at_stop: true,
        },
        Case {
            // ExecStopPost= of the unit OnFailure= started: no MONITOR_*.
            name: "onfailure-stop",
            units: vec![],
            trigger: Trigger::Nothing,
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            // A unit that failed before its main process ran: MONITOR_*
            // without an exit code or status.
            name: "prefails",
            units: vec![
                (
                    "prefails.socket".into(),
                    format!("[Socket]\nListenStream={d}/prefails.sock\nAccept=yes\n"),
                ),
                (
                    "prefails@.service".into(),
                    "[Unit]\nOnFailure=on-prefail.service\n[Service]\nStandardInput=socket\n\
                     ExecStartPre=/bin/false\nExecStart=/bin/true\n"
                        .into(),
                ),
                (
                    "on-prefail.service".into(),
                    format!("[Service]\nType=oneshot\n{}", exec("prefails", "")),
                ),
            ],
            trigger: Trigger::Unix(dir.join("prefails.sock")),
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
        Case {
            name: "dgram",
            units: vec![
                ("dgram.socket".into(), format!("[Socket]\nListenDatagram=127.0.0.1:{udp2}\n")),
                ("dgram.service".into(), format!("[Service]\n{}", exec("dgram", ""))),
            ],
            trigger: Trigger::Udp(udp2),
            journal_output: true,
            unordered_fds: false,
            at_stop: false,
        },
    ]
}

/// The environment both managers start from.
fn manager_env(dir: &Path) -> Vec<(String, String)> {
    [
        ("PATH", "/usr/bin:/bin:/flint-test-path"),
        ("HOME", "/root"),
        ("LANG", "C.UTF-8"),
        ("XDG_RUNTIME_DIR", "/run/user/0"),
        (
            "SYSTEMD_ENVIRONMENT_GENERATOR_PATH",
            &format!("{}/generators:", dir.display()),
        ),
        // Set for the manager itself; a manager hands none of them on.
        ("JOURNAL_STREAM", "8:12345"),
        ("INVOCATION_ID", "00000000000000000000000000000001"),
        ("WATCHDOG_USEC", "1000000"),
        ("MAINPID", "1"),
        ("OWN_VARIABLE", "kept"),
        (
            "SYSTEMD_UNIT_PATH",
            &format!("{}/targets:{}/units", dir.display(), dir.display()),
        ),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect()
}

/// Runs `start` (which leaves a line in `ready` once the sockets listen)
/// and `stop` in a private mount namespace with a fresh `/run`, triggers
/// every case in between and returns each case's record.
fn run_manager(
    label: &str,
    dir: &Path,
    out: &Path,
    cases: &[Case],
    start: &str,
    stop: &str,
) -> Vec<Value> {
    std::fs::create_dir_all(out).unwrap();
    let ready = dir.join(format!("{label}.ready"));
    let done = dir.join(format!("{label}.done"));
    // A cgroup of its own, so that systemd's manager does not take the
    // machine's root cgroup for its own.
    let own = common::OwnCgroup::new(label);
    let script = format!(
        "set -e\nmount -t tmpfs tmpfs /run\nmkdir -p /run/systemd/system /run/user/0\n\
         chmod 700 /run/user/0\ncd /\nREADY={ready}\nulimit -Sn 4096 2>/dev/null || true\n{cgroup}{start}\n\
         i=0; while [ ! -e {done} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n{stop}\n",
        done = done.display(),
        ready = ready.display(),
        cgroup = own.shell_lines(),
    );
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env_clear()
        .envs(manager_env(dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{label}.log"))).unwrap())
        .spawn()
        .expect("unshare");
    let log = || std::fs::read_to_string(dir.join(format!("{label}.log"))).unwrap_or_default();
    let up = common::wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&ready)
            .ok()
            .filter(|s| !s.is_empty())
    });
    if up.is_none() {
        let _ = std::fs::write(&done, "");
        let _ = child.wait();
        panic!("{label}: the sockets never listened:\n{}", log());
    }
    let mut keep = Vec::new();
    for case in cases {
        match &case.trigger {
            Trigger::Tcp(addr) => {
                let mut s = TcpStream::connect(addr.as_str()).unwrap();
                s.write_all(b"hi\n").unwrap();
                keep.push(Box::new(s) as Box<dyn std::any::Any>);
            }
            Trigger::Unix(path) => {
                let mut s = UnixStream::connect(path).unwrap();
                let _ = s.write_all(b"hi\n");
                keep.push(Box::new(s));
            }
            Trigger::Udp(port) => {
                let u = UdpSocket::bind("127.0.0.1:0").unwrap();
                u.send_to(b"x", ("127.0.0.1", *port)).unwrap();
            }
            Trigger::Nothing => {}
            Trigger::Fifo(path) => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .unwrap()
                    .write_all(b"x")
                    .unwrap();
            }
        }
    }
    // One deadline for all: a probe that cannot run records nothing anywhere.
    let until = Instant::now() + Duration::from_secs(30);
    let record = |c: &Case| {
        std::fs::read_to_string(out.join(format!("{}.jsonl", c.name)))
            .ok()?
            .lines()
            .next()
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
    };
    let mut records: Vec<Option<Value>> = cases
        .iter()
        .map(|c| {
            if c.at_stop {
                None
            } else {
                common::wait_for(until.saturating_duration_since(Instant::now()), || {
                    record(c)
                })
            }
        })
        .collect();
    drop(keep);
    std::fs::write(&done, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
    drop(own);
    for (r, c) in records.iter_mut().zip(cases) {
        if c.at_stop {
            *r = record(c);
        }
    }
    records
        .into_iter()
        .zip(cases)
        .map(|(r, c)| {
            r.unwrap_or_else(|| panic!("{label}: {} recorded nothing:\n{}", c.name, log()))
        })
        .collect()
}

/// An invocation ID as far as two managers agree on it: 32 hex digits.
fn id128_shape(v: &Value) -> Value {
    let ok = v
        .as_str()
        .is_some_and(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()));
    Value::String(format!("128-bit hex: {ok}"))
}

/// The record reduced to what must agree (see the module's comment).
fn normalize(r: &Value, case: &Case, home: &str) -> Value {
    let mut r = r.clone();
    let pid = r["pid"].clone();
    let obj = r.as_object_mut().unwrap();
    let (ppid, pgid, sid) = (obj["ppid"].clone(), obj["pgid"].clone(), obj["sid"].clone());
    for k in ["pid", "ppid", "pgid", "sid"] {
        obj.remove(k);
    }
    obj.insert(
        "own_session_and_group".into(),
        Value::Bool(pgid == pid && sid == pid),
    );
    let pid_str = pid.to_string();
    let env = obj["env"].as_object_mut().unwrap();
    let same = |v: Option<&Value>, want: &str| v.and_then(Value::as_str) == Some(want);
    let manager = match env.get("MANAGERPID") {
        None => "absent",
        Some(_) if same(env.get("MANAGERPID"), &ppid.to_string()) => "the parent",
        Some(_) => "another process",
    };
    env.insert("MANAGERPID".into(), Value::String(manager.into()));
    if let Some(v) = env.get("MAINPID") {
        let other = v
            .as_str()
            .and_then(|p| p.parse::<i64>().ok())
            .is_some_and(|p| p > 1 && p.to_string() != pid_str);
        env.insert(
            "MAINPID".into(),
            Value::String(format!("another process: {other}")),
        );
    }
    for k in ["LISTEN_PID", "SYSTEMD_EXEC_PID", "WATCHDOG_PID"] {
        if let Some(v) = env.get(k) {
            let is_self = v.as_str() == Some(&pid_str);
            env.insert(k.into(), Value::String(format!("self: {is_self}")));
        }
    }
    if let Some(v) = env.get("MONITOR_INVOCATION_ID") {
        let shape = id128_shape(v);
        env.insert("MONITOR_INVOCATION_ID".into(), shape);
    }
    // An instance named after its connection: the peer's port varies.
    if let Some(unit) = env.get("MONITOR_UNIT").and_then(Value::as_str) {
        let named = match unit.rsplit_once(':') {
            Some((head, tail)) if tail.ends_with(".service") => format!("{head}:PORT.service"),
            _ => unit.to_string(),
        };
        env.insert("MONITOR_UNIT".into(), Value::String(named));
    }
    // A timer's trigger: its times, in µs on either clock.
    for k in [
        "TRIGGER_TIMER_REALTIME_USEC",
        "TRIGGER_TIMER_MONOTONIC_USEC",
    ] {
        if let Some(v) = env.get(k) {
            let time = v
                .as_str()
                .and_then(|t| t.parse::<u64>().ok())
                .is_some_and(|t| t > 0);
            env.insert(k.into(), Value::String(format!("a time: {time}")));
        }
    }
    if let Some(v) = env.get("INVOCATION_ID") {
        let shape = id128_shape(v);
        env.insert("INVOCATION_ID".into(), shape);
    }
    let port = env
        .get("REMOTE_PORT")
        .and_then(Value::as_str)
        .map(str::to_string);
    if port.is_some() {
        env.insert("REMOTE_PORT".into(), Value::String("PORT".into()));
    }
    if env.contains_key("NOTIFY_SOCKET") {
        env.insert("NOTIFY_SOCKET".into(), Value::String("set".into()));
    }
    // Since 259.
    env.remove("LISTEN_PIDFDID");
    // systemd's compiled-in PATH: with /sbin:/bin on Debian 12's split /usr.
    if let Some(p) = env.get("PATH").and_then(Value::as_str) {
        let default = [
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        .contains(&p);
        env.insert(
            "PATH".into(),
            Value::String(format!("the default: {default}")),
        );
    }
    // The user state directory: ~/.config before 254, ~/.local/state since.
    let old_state = format!("{home}/.config");
    let new_state = format!("{home}/.local/state");
    let state = |s: &str| {
        s.strip_prefix(&format!("{old_state}/log"))
            .map(|rest| format!("{new_state}/log{rest}"))
            .or_else(|| {
                s.strip_prefix("S=")
                    .map(|rest| format!("S={}", rest.replace(&old_state, &new_state)))
            })
            .unwrap_or_else(|| s.to_string())
    };
    for k in ["STATE_DIRECTORY", "LOGS_DIRECTORY"] {
        if let Some(v) = env.get(k).and_then(Value::as_str) {
            let fixed = if k == "STATE_DIRECTORY" {
                v.replacen(&old_state, &new_state, 1)
            } else {
                state(v)
            };
            env.insert(k.into(), Value::String(fixed));
        }
    }
    if let Some(argv) = obj["argv"].as_array_mut() {
        for a in argv.iter_mut() {
            let mut s = a.as_str().unwrap().to_string();
            if let Some(p) = &port {
                s = s.replace(p, "PORT");
            }
            if let Some(rest) = s.strip_prefix("L=") {
                s = format!("L={}", state(rest));
            }
            *a = Value::String(state(&s));
        }
    }
    let fds = obj["fds"].as_object_mut().unwrap();
    if case.journal_output {
        for fd in ["1", "2"] {
            fds.insert(fd.into(), Value::String("journal".into()));
        }
    }
    if case.unordered_fds {
        // Pair each passed fd with its name and sort by name.
        let names: Vec<String> = obj["env"]["LISTEN_FDNAMES"]
            .as_str()
            .unwrap_or_default()
            .split(':')
            .map(str::to_string)
            .collect();
        let fds = obj["fds"].as_object().unwrap().clone();
        let mut paired: Vec<(String, Value)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), fds[&(i + 3).to_string()].clone()))
            .collect();
        paired.sort_by(|a, b| a.0.cmp(&b.0));
        let o = obj["fds"].as_object_mut().unwrap();
        for (i, (_, v)) in paired.iter().enumerate() {
            o.insert((i + 3).to_string(), v.clone());
        }
        let sorted: Vec<&str> = paired.iter().map(|(n, _)| n.as_str()).collect();
        obj["env"]["LISTEN_FDNAMES"] = Value::String(sorted.join(":"));
    }
    r
}

/// Where two records differ, one line per value (`case: path: a != b`).
fn diff(path: &str, want: &Value, got: &Value) -> Vec<String> {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    diff(
                        &format!("{path}.{k}"),
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                    )
                })
                .collect()
        }
        _ if want == got => Vec::new(),
        _ => vec![format!("{path}: systemd {want} != flint {got}")],
    }
}

#[test]
fn services_see_under_flint_what_they_see_under_systemds_user_manager() {
    if !common::require_root("a mount namespace with its own /run for both managers")
        || !common::require("systemctl", "the oracle's control tool")
        || !common::require("python3", "the probe")
        || !common::require("unshare", "the private mount namespace")
    {
        return;
    }
    let Some(systemd) = common::systemd_manager() else {
        return;
    };
    let tree = tempfile::Builder::new()
        .prefix("flint-um-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = tree.path();
    std::fs::write(dir.join("probe.py"), PROBE).unwrap();
    std::fs::write(dir.join("vars.env"), "Q=\"quoted value\"\nexport R=2\n").unwrap();
    std::fs::create_dir(dir.join("generators")).unwrap();
    let generator = dir.join("generators/10-flint-test");
    std::fs::write(&generator, GENERATOR).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&generator, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cases = cases(dir);
    std::fs::write(dir.join("pathed.flag"), "").unwrap();
    let units = dir.join("units");
    std::fs::create_dir(&units).unwrap();
    let out_of = |label: &str| dir.join(format!("out-{label}"));
    let write_units = |out: &Path| {
        for case in &cases {
            for (name, text) in &case.units {
                let text = text
                    .replace("{probe}", &dir.join("probe.py").display().to_string())
                    .replace("{out}", &out.display().to_string());
                std::fs::write(units.join(name), text).unwrap();
            }
        }
    };
    let sockets: Vec<String> = cases
        .iter()
        .flat_map(|c| c.units.iter().map(|(n, _)| n.clone()))
        .filter(|n| matches!(n.rsplit('.').next(), Some("socket" | "timer" | "path")))
        .collect();
    let sockets = sockets.join(" ");

    // The oracle. Its stock targets go first in the unit path, the host's
    // own directories never (the reference's recipe).
    let targets = dir.join("targets");
    common::copy_user_units(
        &targets,
        &[
            &common::USER_MANAGER_UNITS[..],
            &["sockets.target", "paths.target", "timers.target"],
        ]
        .concat(),
    );
    write_units(&out_of("systemd"));
    let start = format!(
        "{}systemctl --user start {sockets}\necho up > \"$READY\"",
        common::start_user_manager(&systemd),
    );
    let reference = run_manager(
        "systemd",
        dir,
        &out_of("systemd"),
        &cases,
        &start,
        "systemctl --user exit; wait",
    );

    // flint, on the same files, after the oracle is gone.
    for name in [
        "u.sock",
        "spec.sock",
        "q.sock",
        "b-link.sock",
        "f.fifo",
        "f2.fifo",
        "sub",
        "stdio.sock",
        "stdio.out",
        "stdio.err",
        "ok.sock",
        "pre.sock",
        "hook.sock",
        "stop.sock",
        "prefails.sock",
    ] {
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p).or_else(|_| std::fs::remove_dir_all(&p));
    }
    write_units(&out_of("flint"));
    let start = format!(
        "{flint} run --user --notify-fd 3 {sockets} 3>\"$READY\" 2>{log} &\nflint=$!",
        flint = common::flint_bin().display(),
        log = dir.join("flint-run.log").display(),
    );
    let got = run_manager(
        "flint",
        dir,
        &out_of("flint"),
        &cases,
        &start,
        "kill -TERM $flint; wait $flint",
    );

    let mut differences = Vec::new();
    for ((case, want), got) in cases.iter().zip(&reference).zip(&got) {
        let want = normalize(want, case, "/root");
        let got = normalize(got, case, "/root");
        differences.extend(diff(case.name, &want, &got));
    }
    // What the comparison rests on: the generators ran under both, and the
    // manager's own variables stayed with it.
    for (label, records) in [("systemd", &reference), ("flint", &got)] {
        let env = &records[0]["env"];
        assert_eq!(env["FROM_GENERATOR"], "1", "{label}: {env}");
        assert_eq!(env["CHAINED"], "/root:seen", "{label}: {env}");
        assert_eq!(env["OWN_VARIABLE"], "kept", "{label}: {env}");
        assert!(env.get("JOURNAL_STREAM").is_none(), "{label}: {env}");
        // What an OnFailure=/OnSuccess= unit learns of the unit that
        // started it.
        let of = |name: &str| &records[cases.iter().position(|c| c.name == name).unwrap()]["env"];
        let failure = of("onfailure");
        assert_eq!(
            failure["MONITOR_SERVICE_RESULT"], "exit-code",
            "{label}: {failure}"
        );
        assert_eq!(failure["MONITOR_EXIT_CODE"], "exited", "{label}: {failure}");
        assert_eq!(failure["MONITOR_EXIT_STATUS"], "3", "{label}: {failure}");
        assert!(
            failure["MONITOR_UNIT"]
                .as_str()
                .is_some_and(|u| u.starts_with("fails@0-127.0.0.1:")),
            "{label}: {failure}"
        );
        let invocation = std::fs::read_to_string(dir.join(format!("out-{label}/fails.invocation")))
            .unwrap_or_default();
        assert_eq!(
            failure["MONITOR_INVOCATION_ID"].as_str(),
            Some(invocation.trim()),
            "{label}: the failed unit's INVOCATION_ID"
        );
        let stop = of("onfailure-stop");
        assert!(stop.get("MONITOR_UNIT").is_none(), "{label}: {stop}");
        assert_eq!(stop["SERVICE_RESULT"], "success", "{label}: {stop}");
        let pre = of("prefails");
        assert_eq!(pre["MONITOR_SERVICE_RESULT"], "exit-code", "{label}: {pre}");
        assert!(pre.get("MONITOR_EXIT_CODE").is_none(), "{label}: {pre}");
        let success = of("onsuccess");
        assert_eq!(
            success["MONITOR_SERVICE_RESULT"], "success",
            "{label}: {success}"
        );
        assert_eq!(success["MONITOR_EXIT_CODE"], "killed", "{label}: {success}");
        assert_eq!(success["MONITOR_EXIT_STATUS"], "TERM", "{label}: {success}");
    }
    assert!(
        differences.is_empty(),
        "flint differs from systemd's user manager:\n{}\nflint's log:\n{}",
        differences.join("\n"),
        std::fs::read_to_string(dir.join("flint-run.log")).unwrap_or_default()
    );
}
