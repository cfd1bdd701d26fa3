"""The benchmark's scenarios and the knobs that size them (BENCH_QUICK,
BENCH_DURATION, BENCH_WARMUP, BENCH_ROUNDS); bench.py runs them. Standard
library only."""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_api  # noqa: E402
import bench_ceiling  # noqa: E402
import bench_scale  # noqa: E402


def env_num(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw else default


QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
DURATION = env_num("BENCH_DURATION", 5 if QUICK else 20)
WARMUP = env_num("BENCH_WARMUP", 2 if QUICK else 5)
# How many times each scenario that compares servers runs on each of them,
# the servers taking turns within a round.
ROUNDS = int(env_num("BENCH_ROUNDS", 1))
if ROUNDS < 1:
    raise SystemExit(f"BENCH_ROUNDS must be 1 or more, not {ROUNDS}")
# The one-room fan-out scenarios' generator threads. One by default (every
# earlier result); at 1000 members that one thread is near a whole core,
# so two show how much of the latency is the generator's own backlog.
FANOUT_THREADS = int(env_num("BENCH_FANOUT_THREADS", 1))
if FANOUT_THREADS < 1:
    raise SystemExit(f"BENCH_FANOUT_THREADS must be 1 or more, not {FANOUT_THREADS}")


def scenarios() -> list[dict]:
    def fanout(members: int, publishers: int) -> dict:
        return {
            "id": f"fanout-{members}",
            "title": f"One room, {members} members, {publishers} publishers at 1.5 msg/s",
            "mode": "fanout",
            "args": ["--rooms", "1", "--members", str(members), "--publishers", str(publishers),
                     "--rate", "1.5", "--warmup", str(WARMUP), "--duration", str(DURATION),
                     "--threads", str(FANOUT_THREADS)],
            "budget": WARMUP + DURATION + 90,
        }

    def fanout_rooms(conns: int, per_conn: int) -> dict:
        # Many rooms per connection (protocol version 2 `join`): 8 rooms each,
        # 80 members per room (a realistic audience), and the one-room
        # scenarios' publishing: one member in five publishes, 1.5 msg/s,
        # round-robin over its rooms. 16 connections per source address:
        # their 7 joins each (112) stay inside the per-IP message burst
        # (200), which 32 (224) would not. With per_conn = 1 it is the
        # control: the same connections, audience, message rate and frames
        # per connection, in one room each.
        members = 80
        rooms = conns * per_conn // members
        what = f"in {per_conn} rooms each" if per_conn > 1 else "in one room each (the control for fanout-rooms)"
        return {
            "id": "fanout-rooms" if per_conn > 1 else "fanout-rooms-1",
            "title": f"{conns:,} connections {what}: {rooms} rooms × {members} members, "
                     f"{members // 5} publishers per room at 1.5 msg/s"
                     + (" round-robin over their rooms" if per_conn > 1 else ""),
            "mode": "fanout",
            "args": ["--rooms", str(rooms), "--members", str(members), "--rooms-per-conn", str(per_conn),
                     "--publishers", str(members // 5), "--rate", "1.5", "--per-ip", "16",
                     "--timeout", "120", "--warmup", str(WARMUP), "--duration", str(DURATION)],
            "budget": WARMUP + DURATION + 200,
            "needs_join": per_conn > 1,
        }

    if QUICK:
        idle_n, idle_rooms, storm_n, auth_n = 1000, 10, 500, 500
        fan = [fanout(100, 20), fanout(200, 40), fanout_rooms(400, 1), fanout_rooms(400, 8)]
    else:
        idle_n, idle_rooms, storm_n, auth_n = 10_000, 100, 5_000, 10_000
        fan = [fanout(200, 40), fanout(500, 100), fanout(1000, 200), fanout_rooms(2000, 1), fanout_rooms(2000, 8)]
    users = int(env_num("BENCH_JWT_USERS", max(1, auth_n // 10)))
    return fan + [
        {
            "id": f"idle-{idle_n}",
            "title": f"{idle_n:,} idle connections in {idle_rooms} rooms",
            "mode": "idle",
            # Two generator threads and 1,024 handshakes in flight: with one
            # thread and 256 the generator, not the server, set the time.
            "args": ["--connections", str(idle_n), "--rooms", str(idle_rooms), "--duration", "5",
                     "--timeout", "120", "--threads", "2", "--connect-concurrency", "1024"],
            "budget": 200,
        },
        {
            "id": f"join-{storm_n}",
            "title": f"{storm_n:,} clients joining one room as fast as possible",
            "mode": "join-storm",
            "args": ["--clients", str(storm_n), "--timeout", "120"],
            "budget": 300,
        },
        {
            "id": f"jwt-storm-{auth_n}",
            "title": f"{auth_n:,} clients connecting into {idle_rooms} rooms: static token, HS256 and ES256 JWTs",
            "mode": "connect-storm",
            # As the idle scenario connects: two generator threads, 1,024 in flight.
            "args": ["--clients", str(auth_n), "--rooms", str(idle_rooms), "--timeout", "120",
                     "--threads", "2", "--connect-concurrency", "1024"],
            "budget": 300,
            "variants": ["static", "HS256", "ES256"],
            "clients": auth_n,
            "users": users,
        },
    ] + bench_api.scenarios(QUICK) + bench_scale.scenarios(QUICK) + bench_ceiling.scenarios(QUICK)


# A fan-out of two connections in two rooms each: does a server answer
# version 2 `join` with `history`? (An earlier ws-chat build may not.)
JOIN_PROBE = {"id": "join-probe", "mode": "fanout", "budget": 60,
              "args": ["--rooms", "2", "--members", "1", "--rooms-per-conn", "2", "--publishers", "1",
                       "--warmup", "0", "--duration", "1", "--timeout", "10", "--late-ms", "500"]}
