//! Which pins below their target get a `replication lag` warning line, and when: once a pin
//! starts lagging and again every [`LAG_LOG_EVERY`] while it lags, at most
//! [`LAG_LINES_PER_ROUND`] lines a status round; the rest of a round's due pins are only
//! counted, for one summary line (a burst of thousands of new pins is below target while it
//! is copied, and a line per pin buried everything else in the log). Pure bookkeeping: the
//! tracker writes the lines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Interval between two `replication lag` warnings for one pin.
pub const LAG_LOG_EVERY: Duration = Duration::from_secs(60);
/// Warning lines for single pins per status round.
pub const LAG_LINES_PER_ROUND: usize = 20;

/// When each lagging pin was last warned about.
#[derive(Debug, Default)]
pub struct LagLog {
    warned: HashMap<String, Instant>,
}

/// One status round over every pin.
#[derive(Debug)]
pub struct LagRound<'a> {
    log: &'a mut LagLog,
    now: Instant,
    lines: usize,
    more: usize,
}

impl LagLog {
    pub fn round(&mut self, now: Instant) -> LagRound<'_> {
        LagRound {
            log: self,
            now,
            lines: 0,
            more: 0,
        }
    }

    /// Pins currently remembered as lagging.
    #[cfg(test)]
    pub fn lagging(&self) -> usize {
        self.warned.len()
    }
}

impl LagRound<'_> {
    /// One pin's status: true when a warning line for it is to be written now.
    pub fn note(&mut self, cid: &str, pinned: u32, target: u32) -> bool {
        let warned = &mut self.log.warned;
        if pinned >= target {
            warned.remove(cid);
            return false;
        }
        let due = warned
            .get(cid)
            .is_none_or(|t| self.now.duration_since(*t) >= LAG_LOG_EVERY);
        if !due {
            return false;
        }
        warned.insert(cid.to_owned(), self.now);
        if self.lines < LAG_LINES_PER_ROUND {
            self.lines += 1;
            true
        } else {
            self.more += 1;
            false
        }
    }

    /// Due pins of this round that got no line of their own.
    pub fn finish(self) -> usize {
        // A burst of pins below target grew the map to one slot per pin; it keeps its table
        // after they are all held unless shrunk.
        let warned = &mut self.log.warned;
        if warned.capacity() > 2 * warned.len() + 64 {
            warned.shrink_to_fit();
        }
        self.more
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: usize) -> String {
        format!("cid{n}")
    }

    /// Lines written and pins only counted in one round over `pins` pins at `pinned` of 3.
    fn round(log: &mut LagLog, now: Instant, pins: usize, pinned: u32) -> (usize, usize) {
        let mut r = log.round(now);
        let lines = (0..pins).filter(|n| r.note(&cid(*n), pinned, 3)).count();
        (lines, r.finish())
    }

    #[test]
    fn a_burst_gets_twenty_lines_and_one_count_then_silence_for_a_minute() {
        let t = Instant::now();
        let mut log = LagLog::default();
        assert_eq!(round(&mut log, t, 1000, 1), (20, 980));
        assert_eq!(round(&mut log, t + Duration::from_secs(1), 1000, 1), (0, 0));
        assert_eq!(log.lagging(), 1000);
        assert_eq!(round(&mut log, t + LAG_LOG_EVERY, 1000, 2), (20, 980));
    }

    #[test]
    fn a_pin_that_reached_its_target_is_forgotten_and_warned_again_if_it_lags_again() {
        let t = Instant::now();
        let mut log = LagLog::default();
        assert_eq!(round(&mut log, t, 1, 2), (1, 0));
        assert_eq!(round(&mut log, t + Duration::from_secs(1), 1, 3), (0, 0));
        assert_eq!(log.lagging(), 0);
        assert_eq!(round(&mut log, t + Duration::from_secs(2), 1, 2), (1, 0));
    }
}
