"""Where one CPU's time goes, from `perf record -g -e cpu-clock` stacks.

Each sample's call stack gets one category; the first rule that matches any frame
wins, so TCP work reached through io_uring or epoll counts as TCP work, and the
receive work loopback does inside a send (the sender's CPU runs the peer's
receive path in softirq) counts as the peer's, not as the send.

Used by bench/coreshare; `python3 stackclass.py --self-test` checks the rules on
hand-written stacks.
"""

import re
import sys

IDLE = "idle"
PEER_RX = "peer's TCP receive (softirq on loopback)"
TCP_TX = "own TCP send"
TCP_RX = "own TCP receive"
EPOLL = "event loop: epoll"
URING = "event loop: io_uring"
SYSCALL = "event loop: syscall entry/exit, file and socket layers"
USER = "user space"
OTHER = "other kernel (interrupts, timers, scheduler)"

CATEGORIES = [TCP_TX, PEER_RX, TCP_RX, EPOLL, URING, SYSCALL, USER, OTHER, IDLE]
EVENT_LOOP = (EPOLL, URING, SYSCALL)   # what a backend can change
TCP = (TCP_TX, PEER_RX, TCP_RX)        # what it cannot

# (category, exact names, name prefixes), tried in this order.
_RULES = [
    (IDLE, {"do_idle", "cpu_startup_entry", "default_idle_call", "cpuidle_enter"}, ()),
    (PEER_RX, {"net_rx_action", "process_backlog", "__netif_receive_skb_one_core",
               "__netif_receive_skb"}, ()),
    (TCP_TX, {"tcp_sendmsg", "tcp_sendmsg_locked", "__tcp_push_pending_frames"}, ()),
    (TCP_RX, {"tcp_recvmsg", "tcp_recvmsg_locked", "tcp_cleanup_rbuf"}, ()),
    (EPOLL, {"do_epoll_wait", "ep_poll", "ep_send_events", "ep_item_poll"},
     ("__x64_sys_epoll_", "__do_sys_epoll_")),
    (URING, set(), ("io_", "__io_", "__do_sys_io_uring", "__x64_sys_io_uring")),
    (SYSCALL, {"do_syscall_64", "syscall_exit_to_user_mode"},
     ("entry_SYSCALL", "__x64_sys_", "ksys_")),
]

_KERNEL_MIN = 0xffff800000000000


def classify(frames):
    """frames: [(ip, symbol)], leaf first. Returns one of CATEGORIES."""
    names = [sym.split("+")[0] for _, sym in frames]
    for cat, exact, prefixes in _RULES:
        for n in names:
            if n in exact or (prefixes and n.startswith(prefixes)):
                return cat
    if not frames or frames[0][0] < _KERNEL_MIN:
        return USER
    return OTHER


_HEADER = re.compile(r"^\s*(\S.*?)\s+\[(\d+)\]\s*$")


def parse_perf_script(text):
    """Samples of `perf script -F comm,cpu,ip,sym`: yields (cpu, comm, frames)."""
    cpu = comm = None
    frames = []
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            if cpu is not None:
                yield cpu, comm, frames
            comm, cpu, frames = m.group(1), int(m.group(2)), []
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
        yield cpu, comm, frames


def shares(text, cpu):
    """{category: samples} for one CPU, and the number of samples."""
    out = dict.fromkeys(CATEGORIES, 0)
    n = 0
    for c, _comm, frames in parse_perf_script(text):
        if c == cpu:
            out[classify(frames)] += 1
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
        ([(K, "__fget_light"), (K, "ksys_write"), (K, "do_syscall_64"),
          (K, "entry_SYSCALL_64_after_hwframe")], SYSCALL),
        ([(K, "pv_native_safe_halt"), (K, "default_idle_call"), (K, "do_idle")], IDLE),
        ([(0x55d0c0de, "codec_frame_decode"), (0x55d0c0df, "conn_received")], USER),
        ([(K, "hrtimer_interrupt"), (K, "asm_sysvec_apic_timer_interrupt"),
          (0x55d0c0de, "conn_received")], OTHER),
    ]
    text = ("wharfd [000] \n\tffffffff81000000 tcp_sendmsg\n\t  7f0000001000 __libc_write\n\n"
            "swapper [001] \n\tffffffff81000000 do_idle\n")
    parsed = list(parse_perf_script(text))
    failed = 0
    for frames, want in cases:
        got = classify(frames)
        if got != want:
            print(f"FAIL: {[s for _, s in frames]} -> {got}, want {want}")
            failed += 1
    if [(c, n, len(f)) for c, n, f in parsed] != [(0, "wharfd", 2), (1, "swapper", 1)]:
        print(f"FAIL: parse_perf_script -> {parsed}")
        failed += 1
    total = len(cases) + 1
    print(f"{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(_self_test())
    print(__doc__)
