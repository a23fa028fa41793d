//! Replays the cargo-fuzz corpus (`fuzz/corpus/*`) through the same entry
//! points the fuzz targets call, on the stable toolchain, and then runs a
//! small deterministic mutation fuzzer (byte flips, truncations, splices)
//! from every seed. Any panic fails the test.

use sockscope_capture::fuzzing;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .map(|p| {
            let b = std::fs::read(&p).expect("read seed");
            (p, b)
        })
        .collect();
    v.sort();
    v
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = seed.to_vec();
    match rng.next() % 4 {
        0 if !m.is_empty() => {
            for _ in 0..1 + rng.next() % 8 {
                let i = (rng.next() as usize) % m.len();
                m[i] ^= 1 << (rng.next() % 8);
            }
        }
        1 if !m.is_empty() => {
            let n = (rng.next() as usize) % m.len();
            m.truncate(n);
        }
        2 if m.len() > 4 => {
            // Overwrite with interesting values (0, 0xff, lengths).
            let i = (rng.next() as usize) % (m.len() - 4);
            let v: [u8; 4] = match rng.next() % 3 {
                0 => [0; 4],
                1 => [0xff; 4],
                _ => (rng.next() as u32).to_le_bytes(),
            };
            m[i..i + 4].copy_from_slice(&v);
        }
        _ => {
            let extra = (rng.next() % 64) as usize;
            for _ in 0..extra {
                m.push(rng.next() as u8);
            }
        }
    }
    m
}

fn run(target: &str, f: fn(&[u8]), min_seeds: usize, rounds: usize) {
    let seeds = corpus(target);
    assert!(
        seeds.len() >= min_seeds,
        "{target}: corpus has {} seeds",
        seeds.len()
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (path, seed) in &seeds {
        let r = std::panic::catch_unwind(|| f(seed));
        assert!(r.is_ok(), "{target}: seed {} panics", path.display());
        for i in 0..rounds {
            let m = mutate(seed, &mut rng);
            let r = std::panic::catch_unwind(|| f(&m));
            assert!(
                r.is_ok(),
                "{target}: mutation {i} of {} panics: {m:02x?}",
                path.display()
            );
        }
    }
}

#[test]
fn decode_corpus_and_mutations() {
    run("decode", fuzzing::decode_frame, 20, 300);
}

#[test]
fn read_file_corpus_and_mutations() {
    run("read_file", fuzzing::read_file, 8, 60);
}

#[test]
fn filter_corpus_and_mutations() {
    run("filter", fuzzing::filter_expr, 8, 300);
}
