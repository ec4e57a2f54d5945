"""Where one CPU's time goes, from `perf record -g -e cpu-clock` stacks.

Each sample's call stack gets one category; the first rule that matches any frame
wins, so TCP (or UDP) work reached through io_uring or epoll counts as TCP (UDP)
work, and the receive work loopback does inside a send (the sender's CPU runs the
peer's receive path in softirq) counts as the peer's, not as the send.

Used by bench/coreshare; `python3 stackclass.py --self-test` checks the rules on
hand-written stacks.
"""

import re
import sys

IDLE = "idle"
PEER_RX = "peer's TCP receive (softirq on loopback)"
TCP_TX = "own TCP send"
TCP_RX = "own TCP receive"
UDP_TX = "own UDP send"
UDP_RX = "own UDP receive"
EPOLL = "event loop: epoll"
URING = "event loop: io_uring"
SYSCALL = "event loop: syscall entry/exit, file and socket layers"
USER = "user space"
OTHER = "other kernel (interrupts, timers, scheduler)"
PROFILER = "the profiler itself (perf)"
FOREIGN = "other processes (not the server, the load or the kernel's softirq threads)"

CATEGORIES = [TCP_TX, PEER_RX, TCP_RX, UDP_TX, UDP_RX, EPOLL, URING, SYSCALL, USER, OTHER,
              IDLE, PROFILER, FOREIGN]
NOT_BUSY = (IDLE, PROFILER, FOREIGN)   # left out of a CPU's busy time
EVENT_LOOP = (EPOLL, URING, SYSCALL)   # what a backend can change
TCP = (TCP_TX, PEER_RX, TCP_RX)        # what it cannot
UDP = (UDP_TX, PEER_RX, UDP_RX)        # likewise for datagrams (PEER_RX: the peer's UDP
                                       # receive, on loopback, is the same softirq)

# (category, exact names, name prefixes), tried in this order.
_RULES = [
    (IDLE, {"do_idle", "cpu_startup_entry", "default_idle_call", "cpuidle_enter"}, ()),
    (PEER_RX, {"net_rx_action", "process_backlog", "__netif_receive_skb_one_core",
               "__netif_receive_skb"}, ()),
    (TCP_TX, {"tcp_sendmsg", "tcp_sendmsg_locked", "__tcp_push_pending_frames"}, ()),
    (TCP_RX, {"tcp_recvmsg", "tcp_recvmsg_locked", "tcp_cleanup_rbuf"}, ()),
    (UDP_TX, {"udp_sendmsg", "udpv6_sendmsg", "udp_send_skb", "udp_push_pending_frames"}, ()),
    (UDP_RX, {"udp_recvmsg", "udpv6_recvmsg", "__skb_recv_udp"}, ()),
    (EPOLL, {"do_epoll_wait", "ep_poll", "ep_send_events", "ep_item_poll"},
     ("__x64_sys_epoll_", "__do_sys_epoll_")),
    (URING, set(), ("io_", "__io_", "__do_sys_io_uring", "__x64_sys_io_uring")),
    (SYSCALL, {"do_syscall_64", "syscall_exit_to_user_mode"},
     ("entry_SYSCALL", "__x64_sys_", "ksys_")),
]

_KERNEL_MIN = 0xffff800000000000


def classify(frames, comm=""):
    """frames: [(ip, symbol)], leaf first. Returns one of CATEGORIES. Only kernel frames
    are matched: liburing's own functions (io_uring_*) are user space, as libc's
    epoll_wait wrapper is."""
    if comm == "perf":
        return PROFILER
    names = [sym.split("+")[0] for ip, sym in frames if ip >= _KERNEL_MIN]
    for cat, exact, prefixes in _RULES:
        for n in names:
            if n in exact or (prefixes and n.startswith(prefixes)):
                return cat
    if not frames or frames[0][0] < _KERNEL_MIN:
        return USER
    return OTHER


_HEADER = re.compile(r"^\s*(\S.*?)\s+\[(\d+)\](?:\s+(\d+\.\d+):)?\s*$")


def parse_perf_script(text):
    """Samples of `perf script -F comm,cpu[,time],ip,sym`: yields (cpu, comm, time or
    None, frames)."""
    cpu = comm = when = None
    frames = []
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            if cpu is not None:
                yield cpu, comm, when, frames
            comm, cpu, frames = m.group(1), int(m.group(2)), []
            when = float(m.group(3)) if m.group(3) else None
            continue
        parts = line.split(None, 1)
        if cpu is None or not parts:
            continue
        try:
            ip = int(parts[0], 16)
        except ValueError:
            continue
        frames.append((ip, parts[1] if len(parts) > 1 else "[unknown]"))
    if cpu is not None:
        yield cpu, comm, when, frames


def shares(text, cpu, start=None, end=None, ours=None):
    """{category: samples} for one CPU (only samples timed within [start, end] when
    those are given), and the number of samples. ours: command-name prefixes of the
    measured processes; a sample of any other process (on a shared machine) is FOREIGN,
    apart from idle, perf and the kernel's softirq threads (they run the loopback's
    receive work when it is deferred)."""
    out = dict.fromkeys(CATEGORIES, 0)
    n = 0
    mine = tuple(ours or ()) + ("swapper", "ksoftirqd", "perf")
    for c, comm, when, frames in parse_perf_script(text):
        if c != cpu or (start is not None and (when is None or not start <= when <= end)):
            continue
        out[classify(frames, comm) if not ours or comm.startswith(mine) else FOREIGN] += 1
        n += 1
    return out, n


def _self_test():
    K = 0xffffffff81000000
    send_with_peer_rx = [(K, "tcp_ack"), (K, "tcp_v4_rcv"), (K, "process_backlog"),
                         (K, "net_rx_action"), (K, "__dev_queue_xmit"), (K, "tcp_sendmsg"),
                         (K, "io_send"), (K, "io_submit_sqes"),
                         (K, "__do_sys_io_uring_enter"), (K, "do_syscall_64")]
    cases = [
        (send_with_peer_rx, PEER_RX),
        ([(K, "copy_user_generic"), (K, "tcp_sendmsg_locked"), (K, "tcp_sendmsg"),
          (K, "sock_write_iter"), (K, "vfs_write"), (K, "ksys_write"),
          (K, "do_syscall_64")], TCP_TX),
        ([(K, "skb_copy_datagram_iter"), (K, "tcp_recvmsg"), (K, "io_recv"),
          (K, "io_poll_task_func")], TCP_RX),
        ([(K, "_raw_spin_lock"), (K, "ep_poll"), (K, "do_epoll_wait"),
          (K, "__x64_sys_epoll_wait"), (K, "do_syscall_64")], EPOLL),
        ([(K, "fget"), (K, "io_file_get_normal"), (K, "io_submit_sqes")], URING),
        ([(K, "ip_make_skb"), (K, "udp_sendmsg"), (K, "____sys_sendmsg"), (K, "___sys_sendmsg"),
          (K, "__sys_sendmmsg"), (K, "__x64_sys_sendmmsg"), (K, "do_syscall_64")], UDP_TX),
        ([(K, "udp_queue_rcv_skb"), (K, "udp_rcv"), (K, "process_backlog"),
          (K, "net_rx_action"), (K, "udp_sendmsg")], PEER_RX),
        ([(K, "skb_copy_datagram_iter"), (K, "udp_recvmsg"), (K, "io_recvmsg"),
          (K, "io_poll_task_func")], UDP_RX),
        ([(K, "copy_msghdr_from_user"), (K, "___sys_sendmsg"), (K, "__sys_sendmmsg"),
          (K, "__x64_sys_sendmmsg"), (K, "do_syscall_64")], SYSCALL),
        ([(K, "__fget_light"), (K, "ksys_write"), (K, "do_syscall_64"),
          (K, "entry_SYSCALL_64_after_hwframe")], SYSCALL),
        ([(K, "pv_native_safe_halt"), (K, "default_idle_call"), (K, "do_idle")], IDLE),
        ([(0x55d0c0de, "codec_frame_decode"), (0x55d0c0df, "conn_received")], USER),
        ([(K, "hrtimer_interrupt"), (K, "asm_sysvec_apic_timer_interrupt"),
          (0x55d0c0de, "conn_received")], OTHER),
        ([(0x7f0000001000, "io_uring_submit_and_wait_timeout"),
          (0x55d0c0de, "ur_run")], USER),
    ]
    text = ("wharfd [000] 100.250000: \n\tffffffff81000000 tcp_sendmsg\n"
            "\t  7f0000001000 __libc_write\n\n"
            "swapper [001] 100.500000: \n\tffffffff81000000 do_idle\n\n"
            "perf [000] 101.000000: \n\tffffffff81000000 tcp_sendmsg\n")
    parsed = list(parse_perf_script(text))
    failed = 0
    for frames, want in cases:
        got = classify(frames)
        if got != want:
            print(f"FAIL: {[s for _, s in frames]} -> {got}, want {want}")
            failed += 1
    if [(c, n, t, len(f)) for c, n, t, f in parsed] != \
            [(0, "wharfd", 100.25, 2), (1, "swapper", 100.5, 1), (0, "perf", 101.0, 1)]:
        print(f"FAIL: parse_perf_script -> {parsed}")
        failed += 1
    got = shares(text, 0, 100.0, 100.9)
    if got[1] != 1 or got[0][TCP_TX] != 1:
        print(f"FAIL: shares in a window -> {got}")
        failed += 1
    got = shares(text, 0)
    if got[1] != 2 or got[0][PROFILER] != 1:
        print(f"FAIL: shares, the profiler's own samples -> {got}")
        failed += 1
    got = shares(text.replace("wharfd [000]", "cc1 [000]"), 0, ours=("wharf",))
    if got[0][FOREIGN] != 1 or got[0][PROFILER] != 1:
        print(f"FAIL: shares, another process's samples -> {got}")
        failed += 1
    total = len(cases) + 4
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(_self_test())
    print(__doc__)
