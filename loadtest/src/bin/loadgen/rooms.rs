//! Fan-out roles: which rooms each connection is in, and who publishes
//! (one room per connection, or `--rooms-per-conn N` rooms through `join`).
//!
//! The assignment, with R rooms, M members per room, N rooms per connection
//! and S = R / N (R must be a multiple of N): there are C = S × M
//! connections; connection `i` is in block `b = i / S`, and its k-th room
//! (k = 0 .. N) is
//!
//! ```text
//! room(i, k) = k·S + ((i + k·b) mod S)
//! ```
//!
//! - The k-th rooms all lie in band k (rooms k·S .. k·S + S − 1), so a
//!   connection's N rooms are always distinct.
//! - Within one block, `i ↦ (i + k·b) mod S` runs once over the band, so
//!   every block puts exactly one member in every room: every room has
//!   exactly M members (the M blocks).
//! - The shift `k·b` mixes the audiences: connections of different blocks
//!   share some rooms and not others, instead of forming groups of N rooms
//!   with the same members.
//! - With N = 1 (S = R) this is `room = i mod R`, block = `i / R`: the
//!   one-room layout the fan-out mode always had.
//!
//! Publishers are whole blocks, spread through the M blocks (block `b`
//! publishes when `b` is a multiple of M / P and `b / (M / P) < P`), so every
//! room has exactly P publishing members. A publisher with several rooms
//! sends its messages round-robin over them, so each room receives P / N of
//! a publisher's rate from each of its P publishers.

use std::time::Duration;

use crate::args::Args;
use crate::conn::Role;

/// The index of connection `index`'s k-th room (see the module docs).
pub fn room_of(index: usize, k: usize, rooms: usize, per_conn: usize) -> usize {
    let s = rooms / per_conn;
    let block = index / s;
    k * s + (index + k * block) % s
}

/// Connections in a fan-out run: R × M / N.
pub fn connections(a: &Args) -> usize {
    a.rooms / a.rooms_per_conn * a.members
}

/// Publishing connections: P per room, each in N rooms.
pub fn publishers(a: &Args) -> usize {
    a.rooms / a.rooms_per_conn * a.publishers
}

fn name(room: usize) -> String {
    format!("bench-{room}")
}

/// Every fan-out connection's role. Publisher j of `publishers(a)` fires at
/// phase j / publishers(a) of the period, so the load is spread evenly.
pub fn fanout_roles(a: &Args) -> Vec<Role> {
    let s = a.rooms / a.rooms_per_conn;
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let stride = a.members / a.publishers;
    let total_publishers = publishers(a);
    (0..connections(a))
        .map(|index| {
            let block = index / s;
            let publisher = block.is_multiple_of(stride) && block / stride < a.publishers;
            let ordinal = (block / stride) * s + index % s;
            let phase = period.mul_f64(ordinal as f64 / total_publishers as f64);
            Role {
                index,
                room: name(room_of(index, 0, a.rooms, a.rooms_per_conn)),
                joins: (1..a.rooms_per_conn)
                    .map(|k| name(room_of(index, k, a.rooms, a.rooms_per_conn)))
                    .collect(),
                publish: publisher.then_some((period, phase)),
            }
        })
        .collect()
}

/// Why `--rooms`, `--members` and `--rooms-per-conn` do not fit together.
pub fn validate(a: &Args) -> Result<(), String> {
    let n = a.rooms_per_conn;
    if n == 0 || n > a.rooms || !a.rooms.is_multiple_of(n) {
        return Err("--rooms-per-conn must be at least 1 and divide --rooms".into());
    }
    // ws-chat's default limits.max_rooms_per_connection.
    if n > 16 {
        return Err("--rooms-per-conn: at most 16 (the server's default room limit)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse;

    fn args(s: &str) -> Args {
        parse(s.split_whitespace().map(String::from)).expect("parses")
    }

    #[test]
    fn one_room_per_connection_is_the_old_layout() {
        let a = args("--mode fanout --rooms 3 --members 10 --publishers 2");
        let roles = fanout_roles(&a);
        assert_eq!(roles.len(), 30);
        for r in &roles {
            assert_eq!(r.room, format!("bench-{}", r.index % 3));
            assert!(r.joins.is_empty());
        }
        // Ranks 0 and 5 of each room publish, as before.
        let pubs: Vec<usize> = roles
            .iter()
            .filter(|r| r.publish.is_some())
            .map(|r| r.index)
            .collect();
        assert_eq!(pubs, vec![0, 1, 2, 15, 16, 17]);
    }

    #[test]
    fn many_rooms_are_distinct_full_and_mixed() {
        let a = args("--mode fanout --rooms 200 --members 80 --publishers 16 --rooms-per-conn 8");
        let roles = fanout_roles(&a);
        assert_eq!(roles.len(), 2000);
        assert_eq!(publishers(&a), 400);
        let mut members = vec![0usize; 200];
        let mut publishing = vec![0usize; 200];
        for r in &roles {
            let mut mine: Vec<&String> = std::iter::once(&r.room).chain(&r.joins).collect();
            assert_eq!(mine.len(), 8);
            mine.sort();
            mine.dedup();
            assert_eq!(mine.len(), 8, "connection {} has a room twice", r.index);
            for room in mine {
                let k: usize = room["bench-".len()..].parse().expect("number");
                members[k] += 1;
                publishing[k] += usize::from(r.publish.is_some());
            }
        }
        assert!(members.iter().all(|&m| m == 80), "{members:?}");
        assert!(publishing.iter().all(|&p| p == 16), "{publishing:?}");
        // Mixed: connection 0 (block 0) and 25 (block 1) share one room;
        // within a block, connections share none.
        let set = |i: usize| -> Vec<usize> { (0..8).map(|k| room_of(i, k, 200, 8)).collect() };
        let shared = |i: usize, j: usize| set(i).iter().filter(|r| set(j).contains(r)).count();
        assert_eq!((shared(0, 25), shared(0, 1)), (1, 0));
        // Phases are distinct and inside the period.
        let mut phases: Vec<Duration> = roles
            .iter()
            .filter_map(|r| r.publish.map(|p| p.1))
            .collect();
        phases.sort();
        phases.dedup();
        assert_eq!(phases.len(), 400);
        assert!(phases
            .iter()
            .all(|p| *p < Duration::from_secs_f64(1.0 / 1.5)));
    }

    #[test]
    fn rejects_rooms_that_do_not_divide() {
        for bad in [
            "--rooms 10 --rooms-per-conn 3",
            "--rooms 4 --rooms-per-conn 8",
            "--rooms 34 --rooms-per-conn 17",
        ] {
            let argv = format!("--mode fanout {bad}");
            assert!(
                parse(argv.split_whitespace().map(String::from)).is_err(),
                "{bad}"
            );
        }
    }
}
