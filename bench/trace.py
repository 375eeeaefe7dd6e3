"""Parses the `perf script` output of bench/trace (see there); x86-64 system call numbers."""
import re
import statistics
import sys

WAIT4, CLONE, CLONE3, WRITE, FUTEX = 61, 56, 435, 1, 202
EPOLL = (232, 281, 441)  # epoll_wait, epoll_pwait, epoll_pwait2


def show(rows):
    for name, values in rows.items():
        if values:
            print("%-40s %7.0f  (%.0f-%.0f, n=%d)" % (name, statistics.median(values), min(values), max(values), len(values)))


def restart(path, loop_tid):
    # The loop thread's events only: since the spawner thread (spawn/vfork.rs)
    # a restart's clone3 runs there, and returns only once the child exec'd;
    # the loop hands the job over and waits for the pid with two futex calls,
    # which stand for "clone3" below.
    events = []
    for line in open(path):
        m = re.match(r"\s*(\d+)\s+([\d.]+):\s+(\S+): (.*)", line)
        if not m or int(m.group(1)) != loop_tid:
            continue
        nr = re.search(r"NR (-?\d+)", m.group(4))
        ret = re.search(r"= (-?\d+)", m.group(4))
        kind = m.group(3).split(":")[-1]
        events.append((float(m.group(2)) * 1e6, kind, int(nr.group(1)) if nr else None, int(ret.group(1)) if ret else None))
    rows = {k: [] for k in ["tend wakes -> waitpid", "waitpid -> clone3", "  of which PATH search (statx)",
                            "clone3", "clone3 -> tend sleeps again", "  page faults in that span",
                            "tend sleeps -> exec confirmed", "exec confirmed -> `started` written"]}

    def find(i, kind, nrs):
        while i < len(events) and not (events[i][1] == kind and events[i][2] in nrs):
            i += 1
        return i

    i = 0
    while i < len(events):
        t, kind, nr, ret = events[i]
        if not (kind == "sys_exit" and nr == WAIT4 and ret and ret > 0):
            i += 1
            continue
        # The wake: the end of the last long epoll_wait before this reap
        # (short ones in between are the self-pipe's extra turn).
        wake, j = None, i
        while j > 0:
            j -= 1
            if events[j][1] == "sys_exit" and events[j][2] in EPOLL:
                k = j
                while k > 0 and not (events[k][1] == "sys_enter" and events[k][2] in EPOLL):
                    k -= 1
                wake = events[j][0]
                if events[j][0] - events[k][0] > 200:
                    break
                j = k
        c = find(i, "sys_enter", (CLONE3, CLONE, FUTEX))
        if c < len(events) and events[c][2] == FUTEX:
            # The hand-over: every futex call in a row (wake, then wait).
            ce = c
            for k in range(c, len(events)):
                if events[k][2] == FUTEX and events[k][1] == "sys_exit":
                    ce = k
                elif events[k][1] != "page_fault_user" and events[k][2] != FUTEX:
                    break
        else:
            ce = find(c, "sys_exit", (CLONE3, CLONE))
        s = find(ce, "sys_enter", EPOLL)
        se = find(s, "sys_exit", EPOLL)
        w = find(se, "sys_enter", (WRITE,))
        if wake is None or w >= len(events):
            break
        statx = [e[0] for e in events[i:c] if e[2] == 332]
        rows["tend wakes -> waitpid"].append(t - wake)
        rows["waitpid -> clone3"].append(events[c][0] - t)
        rows["  of which PATH search (statx)"].append(statx[-1] - statx[0] if statx else 0)
        rows["clone3"].append(events[ce][0] - events[c][0])
        rows["clone3 -> tend sleeps again"].append(events[s][0] - events[ce][0])
        rows["  page faults in that span"].append(sum(1 for e in events[ce:s] if e[1] == "page_fault_user"))
        rows["tend sleeps -> exec confirmed"].append(events[se][0] - events[s][0])
        rows["exec confirmed -> `started` written"].append(events[w][0] - events[se][0])
        i = w
    show(rows)


def sigterm(path, inits_path):
    inits = {}
    for line in open(inits_path):
        who, pid = line.split()
        inits[int(pid)] = who
    pattern = re.compile(r"^\s*(.+?)\s+(\d+)\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)$")
    events = []
    for line in open(path):
        m = pattern.match(line)
        if m:
            events.append((float(m.group(3)) * 1e6, int(m.group(2)), m.group(4).split(":")[-1], m.group(5)))

    def field(rest, key):
        m = re.search(r"\b" + key + r"=(\S+)", rest)
        return m.group(1) if m else None

    steps = ["forwarded", "child exited", "SIGCHLD to the init", "reaped", "exit_group", "exited", "parent told"]
    results = {"tend": [], "tini": []}
    for i, (t0, pid, kind, rest) in enumerate(events):
        if kind != "signal_generate" or field(rest, "sig") != "15" or pid in inits:
            continue
        init = int(field(rest, "pid"))
        if init not in inits:
            continue
        window = events[i:i + 50000]

        def first(pred, after=t0):
            return next((e for e in window if e[0] >= after and pred(e)), None)

        r = {}
        e = first(lambda e: e[2] == "signal_generate" and e[1] == init and field(e[3], "sig") == "15")
        child = e and int(field(e[3], "pid"))
        r["forwarded"] = e
        r["child exited"] = e and first(lambda e: e[2] == "sched_process_exit" and e[1] == child)
        r["SIGCHLD to the init"] = first(lambda e: e[2] == "signal_generate" and field(e[3], "sig") == "17" and field(e[3], "pid") == str(init))
        r["reaped"] = r["SIGCHLD to the init"] and first(lambda e: e[2] == "sys_enter_wait4" and e[1] == init, r["SIGCHLD to the init"][0])
        r["exit_group"] = first(lambda e: e[2] == "sys_enter_exit_group" and e[1] == init)
        r["exited"] = first(lambda e: e[2] == "sched_process_exit" and e[1] == init)
        r["parent told"] = first(lambda e: e[2] == "signal_generate" and e[1] == init and field(e[3], "sig") == "17")
        if not all(r.values()):
            continue
        row = {k: r[k][0] - t0 for k in steps}
        row["faults"] = sum(1 for e in window if e[2] == "page_fault_user" and e[1] == init and r["reaped"][0] <= e[0] <= r["exit_group"][0])
        results[inits[init]].append(row)
    for who, rows in results.items():
        print(who)
        table, previous = {}, None
        for k in steps:
            table["  %s (step)" % k] = [row[k] - (row[previous] if previous else 0) for row in rows]
            previous = k
        table["  SIGTERM -> parent told (total)"] = [row["parent told"] for row in rows]
        table["  page faults, reaped -> exit_group"] = [row["faults"] for row in rows]
        show(table)


if __name__ == "__main__":
    if sys.argv[1] == "restart":
        restart(sys.argv[2], int(sys.argv[3]))
    else:
        sigterm(sys.argv[2], sys.argv[3])
