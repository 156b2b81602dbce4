//! `Server::shutdown` closes every open side-port connection (an idle keep-alive one, a half-sent head, a slow body) and leaves none of its threads or fds behind; the router's socket lives in a 0700 folder of its own, removed at shutdown.
//!
//! One test function in its own file: the thread and fd counts are this process's.

mod support;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use support::{fd_count, read_to_end, send_raw, thread_count, wait_until, Responses, TestServer};

#[test]
fn shutdown_closes_every_side_port_connection_and_leaves_nothing_behind() {
    let baseline = (thread_count(), fd_count());
    let mut server = TestServer::start(&[]);
    let mut idle = send_raw(server.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(Responses::new(&mut idle).next().status, 200);
    let mut half = send_raw(server.http, b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
    let mut slow = send_raw(
        server.http,
        b"POST /sendall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab",
    );

    let sockets = unix_sockets_of_this_process();
    assert_eq!(sockets.len(), 1, "one router socket: {sockets:?}");
    let folder = sockets[0].parent().expect("a folder").to_owned();
    let mode = std::fs::metadata(&folder)
        .expect("the folder")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{folder:?} is private");

    server.shutdown();
    assert!(!folder.exists(), "{folder:?} is removed");
    for stream in [&mut idle, &mut half, &mut slow] {
        let (rest, _) = read_to_end(stream);
        assert!(rest.is_empty(), "closed without an answer: {rest:?}");
    }
    drop((idle, half, slow));
    // The router's pool threads end a few seconds after it is dropped.
    wait_until("the server's threads and fds are gone", || {
        (thread_count(), fd_count()) == baseline
    });
}

/// The paths of the Unix sockets bound by this process (from its fds and /proc/net/unix).
fn unix_sockets_of_this_process() -> Vec<PathBuf> {
    let inodes: HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .expect("fds")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/self/net/unix").expect("/proc/self/net/unix");
    // Num RefCount Protocol Flags Type St Inode Path
    let mut paths: Vec<PathBuf> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields.get(7)?;
            (inodes.contains(fields[6]) && path.starts_with('/')).then(|| PathBuf::from(path))
        })
        .collect();
    paths.sort();
    paths.dedup();
    paths
}
