//! The quiz: questions one at a time, the answer on a key press, "did you know it?", and spaced
//! repetition over Leitner boxes so that what the learner did not know comes back sooner.
//!
//! The clock is the number of answers given (all sessions together), so a question answered
//! "no" comes back after a few other questions, within the same session, and one known several
//! times in a row only after many sessions.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::bail;
use colored::Colorize as _;
use serde::{Deserialize, Serialize};

use super::bank::{Bank, Level, Question, TOPICS};
use super::print::{self, Locked};

/// Answers in one session (fewer when fewer questions are selected).
pub const SESSION_LENGTH: usize = 10;

/// How many answers later a question in each box is due again: box 0 holds what the learner did
/// not know; each "yes" moves a question one box up, each "no" back to box 0.
pub const INTERVALS: [u32; 6] = [3, 10, 25, 60, 150, 400];

/// The learner's quiz progress, kept under `[quiz]` in the progress file.
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
pub struct QuizState {
    /// Answers given so far: the quiz's clock.
    #[serde(default)]
    pub answered: u32,
    /// Per question id, the questions answered at least once.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub questions: BTreeMap<String, Card>,
}

/// Where one question stands.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Leitner box, 0 (not known) to 5.
    #[serde(rename = "box")]
    pub leitner_box: u8,
    /// The `answered` count from which it is due again.
    pub due: u32,
    /// Times answered "yes" and "no".
    #[serde(default)]
    pub known: u32,
    #[serde(default)]
    pub unknown: u32,
}

impl QuizState {
    /// Records an answer to question `id` and advances the clock.
    pub fn record(&mut self, id: &str, known: bool) {
        self.answered += 1;
        let now = self.answered;
        let card = self.questions.entry(id.to_string()).or_insert(Card {
            leitner_box: 0,
            due: now,
            known: 0,
            unknown: 0,
        });
        if known {
            card.known += 1;
            card.leitner_box = (card.leitner_box + 1).min(INTERVALS.len() as u8 - 1);
        } else {
            card.unknown += 1;
            card.leitner_box = 0;
        }
        card.due = now + INTERVALS[usize::from(card.leitner_box)];
    }

    /// The next question to ask among `pool`, never `last` again unless it is the only one:
    /// first the questions that are due (the longest overdue, then the lowest box), then those
    /// never asked (in the bank's order), then those due soonest.
    pub fn next<'q>(&self, pool: &[&'q Question], last: Option<&str>) -> Option<&'q Question> {
        let candidates = || pool.iter().copied().enumerate();
        let others = candidates().filter(|(_, q)| Some(q.id.as_str()) != last);
        let others: Vec<_> = others.collect();
        let choices = if others.is_empty() {
            candidates().collect()
        } else {
            others
        };
        choices
            .into_iter()
            .min_by_key(|(index, question)| match self.questions.get(&question.id) {
                Some(card) if card.due <= self.answered => (0, card.due, card.leitner_box, *index),
                None => (1, 0, 0, *index),
                Some(card) => (2, card.due, card.leitner_box, *index),
            })
            .map(|(_, question)| question)
    }
}

/// How the learner did on one topic in a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicScore {
    pub topic: String,
    pub known: usize,
    pub asked: usize,
}

/// The session's answers (question, known?) summed up by topic, in the order of [`TOPICS`].
pub fn score_by_topic(answers: &[(&Question, bool)]) -> Vec<TopicScore> {
    let mut scores: Vec<TopicScore> = Vec::new();
    for (question, known) in answers {
        let index = match scores.iter().position(|s| s.topic == question.topic) {
            Some(index) => index,
            None => {
                scores.push(TopicScore {
                    topic: question.topic.clone(),
                    known: 0,
                    asked: 0,
                });
                scores.len() - 1
            }
        };
        scores[index].asked += 1;
        scores[index].known += usize::from(*known);
    }
    let rank = |topic: &str| {
        TOPICS
            .iter()
            .position(|t| *t == topic)
            .unwrap_or(TOPICS.len())
    };
    scores.sort_by_key(|score| rank(&score.topic));
    scores
}

/// Runs a quiz over the bank's questions (or those of one level). In a terminal, one session of
/// up to [`SESSION_LENGTH`] questions: the learner reads a question, presses a key to see the
/// answer, says whether they knew it (`state` is updated and `save`d after every answer), and
/// gets a score by topic at the end; `q`, Esc or Ctrl-C stops early. Without a terminal (piped),
/// prints every selected question with its answer, in order, and leaves `state` alone.
pub fn run(
    bank: &Bank,
    level: Option<Level>,
    locked: &Locked,
    state: &mut QuizState,
    save: &mut dyn FnMut(&QuizState) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let pool = bank.select(level);
    if pool.is_empty() {
        match level {
            Some(level) => bail!("there are no {level} questions"),
            None => bail!("there are no questions"),
        }
    }
    if !crate::term::is_interactive() {
        // A closed stdout (`runner quiz | head`) is not an error worth reporting.
        let _ = write_all(&mut io::stdout().lock(), &pool, locked);
        return Ok(());
    }
    let _raw = crate::term::RawMode::enable()?;
    let mut out = crate::term::CrLf(io::stdout().lock());
    session(&pool, locked, state, save, &mut read_key, &mut out)
}

/// What a key press means to the quiz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Yes,
    No,
    Quit,
    Other,
}

/// Without a terminal: every question and its answer.
fn write_all(out: &mut dyn Write, pool: &[&Question], locked: &Locked) -> io::Result<()> {
    for (number, question) in pool.iter().enumerate() {
        if number > 0 {
            writeln!(out, "\n{}\n", "─".repeat(print::WIDTH).dimmed())?;
        }
        print::write_question(out, question, locked)?;
    }
    Ok(())
}

/// One interactive session, with the keys and the output passed in so that tests can play it.
fn session(
    pool: &[&Question],
    locked: &Locked,
    state: &mut QuizState,
    save: &mut dyn FnMut(&QuizState) -> anyhow::Result<()>,
    keys: &mut dyn FnMut() -> anyhow::Result<Key>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let length = SESSION_LENGTH.min(pool.len());
    let mut answers: Vec<(&Question, bool)> = Vec::new();
    let mut last: Option<&str> = None;
    while answers.len() < length {
        let Some(question) = state.next(pool, last) else {
            break;
        };
        writeln!(
            out,
            "\n{}",
            format!("Question {} of {length}", answers.len() + 1).dimmed()
        )?;
        print::write_question_head(out, question)?;
        writeln!(
            out,
            "\n{}",
            "Think of your answer, then press a key to see it (q quits).".dimmed()
        )?;
        out.flush()?;
        if keys()? == Key::Quit {
            break;
        }
        print::write_question_answer(out, question, locked)?;
        writeln!(out, "\n{}", "Did you know it? [y/n, q quits]".bold())?;
        out.flush()?;
        let known = loop {
            match keys()? {
                Key::Yes => break Some(true),
                Key::No => break Some(false),
                Key::Quit => break None,
                Key::Other => {}
            }
        };
        let Some(known) = known else { break };
        state.record(&question.id, known);
        save(state)?;
        answers.push((question, known));
        last = Some(&question.id);
    }
    write_score(out, &answers)?;
    out.flush()?;
    Ok(())
}

fn write_score(out: &mut dyn Write, answers: &[(&Question, bool)]) -> io::Result<()> {
    writeln!(out)?;
    if answers.is_empty() {
        return writeln!(out, "No answers this time.");
    }
    let known = answers.iter().filter(|(_, known)| *known).count();
    writeln!(
        out,
        "{}",
        format!("You knew {known} of {}.", answers.len()).bold()
    )?;
    let scores = score_by_topic(answers);
    let width = scores
        .iter()
        .map(|s| s.topic.chars().count())
        .max()
        .unwrap_or(0);
    for score in scores {
        let line = format!("  {:width$}  {}/{}", score.topic, score.known, score.asked);
        if score.known == score.asked {
            writeln!(out, "{}", line.green())?;
        } else {
            writeln!(out, "{}", line.yellow())?;
        }
    }
    writeln!(
        out,
        "{}",
        "What you did not know comes back first next time.".dimmed()
    )
}

/// The next key press (Ctrl-C arrives here as a key: raw mode turns off the signal).
fn read_key() -> anyhow::Result<Key> {
    use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
    loop {
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind == KeyEventKind::Release {
            continue;
        }
        let control = key.modifiers.contains(KeyModifiers::CONTROL);
        return Ok(match key.code {
            KeyCode::Char('c' | 'd') if control => Key::Quit,
            KeyCode::Esc | KeyCode::Char('q' | 'Q') => Key::Quit,
            KeyCode::Char('y' | 'Y') => Key::Yes,
            KeyCode::Char('n' | 'N') => Key::No,
            _ => Key::Other,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interview::fixtures::{bank, plain};

    #[test]
    fn new_questions_come_in_the_banks_order() {
        let bank = bank();
        let pool = bank.select(None);
        let state = QuizState::default();
        assert_eq!(state.next(&pool, None).unwrap().id, "futures-are-lazy");
        assert_eq!(
            state.next(&pool, Some("futures-are-lazy")).unwrap().id,
            "join-vs-select"
        );
    }

    #[test]
    fn a_no_comes_back_sooner_than_a_yes() {
        let mut state = QuizState::default();
        state.record("a", true);
        state.record("b", false);
        assert!(state.questions["b"].due < state.questions["a"].due);
        assert_eq!(state.questions["a"].leitner_box, 1);
        assert_eq!(state.questions["b"].leitner_box, 0);

        // A yes moves up a box each time; a no sends it back to box 0.
        state.record("a", true);
        assert_eq!(state.questions["a"].leitner_box, 2);
        state.record("a", false);
        assert_eq!(state.questions["a"].leitner_box, 0);
        assert_eq!(
            (state.questions["a"].known, state.questions["a"].unknown),
            (2, 1)
        );
    }

    #[test]
    fn a_question_not_known_comes_back_within_the_session() {
        let mut bank = bank();
        // Enough questions that a session never runs out of new ones.
        let model = bank.questions[1].clone();
        for n in 0..20 {
            bank.questions.push(Question {
                id: format!("extra-{n}"),
                ..model.clone()
            });
        }
        let pool = bank.select(None);
        let mut state = QuizState::default();
        let mut last: Option<String> = None;
        let mut asked = Vec::new();
        for _ in 0..SESSION_LENGTH {
            let question = state.next(&pool, last.as_deref()).unwrap();
            asked.push(question.id.clone());
            state.record(&question.id, question.id != "futures-are-lazy");
            last = Some(question.id.clone());
        }
        let again = asked
            .iter()
            .skip(1)
            .position(|id| id == "futures-are-lazy")
            .unwrap()
            + 1;
        assert_eq!(again, 1 + INTERVALS[0] as usize, "{asked:?}");
        // The questions known were not asked twice.
        let mut known: Vec<_> = asked
            .iter()
            .filter(|id| *id != "futures-are-lazy")
            .collect();
        let count = known.len();
        known.dedup();
        assert_eq!(known.len(), count, "{asked:?}");
    }

    #[test]
    fn due_questions_come_before_new_ones_and_the_last_is_not_repeated() {
        let bank = bank();
        let pool = bank.select(None);
        let mut state = QuizState::default();
        state.record("pin-why", false);
        state.answered += INTERVALS[0];
        assert_eq!(state.next(&pool, None).unwrap().id, "pin-why");
        assert_eq!(
            state.next(&pool, Some("pin-why")).unwrap().id,
            "futures-are-lazy"
        );
        // A pool of one repeats it.
        let one = &pool[3..];
        assert_eq!(state.next(one, Some("pin-why")).unwrap().id, "pin-why");
        // When nothing is due or new, the soonest due comes.
        for question in &pool {
            state.record(&question.id, true);
        }
        state.record("join-vs-select", false);
        assert_eq!(state.next(&pool, None).unwrap().id, "join-vs-select");
    }

    #[test]
    fn the_state_round_trips_through_toml() {
        let mut state = QuizState::default();
        state.record("futures-are-lazy", true);
        state.record("pin-why", false);

        #[derive(Serialize, Deserialize)]
        struct Progress {
            quiz: QuizState,
        }
        let text = toml::to_string(&Progress {
            quiz: state.clone(),
        })
        .unwrap();
        assert!(
            text.contains(
                "[quiz.questions.futures-are-lazy]\nbox = 1\ndue = 11\nknown = 1\nunknown = 0\n"
            ),
            "{text}"
        );
        let back: Progress = toml::from_str(&text).unwrap();
        assert_eq!(back.quiz, state);

        // A progress file from before the first quiz.
        let empty: Progress = toml::from_str("[quiz]\n").unwrap();
        assert_eq!(empty.quiz, QuizState::default());
        let text = toml::to_string(&Progress {
            quiz: QuizState::default(),
        })
        .unwrap();
        assert_eq!(text, "[quiz]\nanswered = 0\n");
    }

    #[test]
    fn the_score_is_summed_by_topic_in_the_course_order() {
        let bank = bank();
        let q = &bank.questions;
        let answers = [
            (&q[3], true),
            (&q[0], false),
            (&q[3], false),
            (&q[0], true),
            (&q[0], true),
        ];
        assert_eq!(
            score_by_topic(&answers),
            [
                TopicScore {
                    topic: "futures and laziness".into(),
                    known: 2,
                    asked: 3
                },
                TopicScore {
                    topic: "Pin".into(),
                    known: 1,
                    asked: 2
                },
            ]
        );
        assert!(score_by_topic(&[]).is_empty());
    }

    #[test]
    fn without_a_terminal_every_question_is_printed_with_its_answer() {
        let bank = bank();
        let pool = bank.select(Some(Level::Basic));
        let mut out = Vec::new();
        write_all(&mut out, &pool, &Locked::default()).unwrap();
        let out = plain(out);
        let first = out.find("What happens when you call an async fn").unwrap();
        let first_answer = out.find("Nothing runs").unwrap();
        let second = out.find("join! or select!?").unwrap();
        let second_answer = out.find("join! waits for all").unwrap();
        assert!(
            first < first_answer && first_answer < second && second < second_answer,
            "{out}"
        );
        assert!(!out.contains("pin-why"), "{out}");
    }

    /// Plays a session with these keys; returns the output, the state and the saves made.
    fn play(keys: &[Key]) -> (String, QuizState, usize) {
        let bank = bank();
        let pool = bank.select(None);
        let mut state = QuizState::default();
        let mut saves = 0;
        let mut keys = keys.iter().copied();
        let mut out = Vec::new();
        session(
            &pool,
            &Locked::default(),
            &mut state,
            &mut |_| {
                saves += 1;
                Ok(())
            },
            &mut || Ok(keys.next().expect("the session asked for more keys")),
            &mut out,
        )
        .unwrap();
        (plain(out), state, saves)
    }

    #[test]
    fn a_session_asks_reveals_records_and_scores() {
        use Key::*;
        // 4 questions: reveal, then an ignored key, then the answer.
        let (out, state, saves) = play(&[Other, Yes, Other, Other, No, Other, Yes, Other, Yes]);
        assert_eq!(saves, 4);
        assert_eq!(state.answered, 4);
        assert!(out.contains("Question 1 of 4"), "{out}");
        assert!(out.contains("You knew 3 of 4."), "{out}");
        assert!(out.contains("join vs select vs spawn  0/1"), "{out}");
        // The answer comes after the question and after the prompt to think.
        let think = out.find("Think of your answer").unwrap();
        assert!(
            out.find("What happens").unwrap() < think && think < out.find("Nothing runs").unwrap()
        );
    }

    #[test]
    fn q_stops_the_session_at_any_time() {
        use Key::*;
        let (out, state, saves) = play(&[Other, Yes, Quit]);
        assert_eq!((saves, state.answered), (1, 1));
        assert!(out.contains("You knew 1 of 1."), "{out}");

        let (out, state, saves) = play(&[Other, Quit]);
        assert_eq!((saves, state.answered), (0, 0));
        assert!(out.contains("No answers this time."), "{out}");
    }

    #[test]
    fn raw_output_ends_lines_with_crlf() {
        let mut out = crate::term::CrLf(Vec::new());
        write!(out, "a\nb\n\nc").unwrap();
        assert_eq!(out.0, b"a\r\nb\r\n\r\nc");
    }
}
