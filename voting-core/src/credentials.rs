//! Secrets: generated voter credentials and receipts, scrypt hashing of stored
//! secrets, and the bound on how many scrypt computations run at once.
//!
//! Cost choices are justified in `docs/SECURITY.md`.

use std::fmt;
use std::sync::{Condvar, Mutex, OnceLock};

use scrypt::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use scrypt::{Params, Scrypt};
use sha2::{Digest, Sha256};

use crate::error::{Result, VotingError};

/// RFC 4648 base32: no 0/1/8/9, so nothing reads as O/I/B/g.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A secret shown to a person once (a voter credential, a receipt, a password).
///
/// `Debug` does not print it, so a secret cannot leak into a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret typed by a person or received from a peer.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for showing it once or sending it to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The scrypt work factor for one kind of secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// log2 of scrypt's N (memory and time grow as 2^log_n).
    pub log_n: u8,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl HashCost {
    /// Generated voter credentials carry 100 bits of entropy: stretching adds
    /// nothing an attacker could not already not afford, so the cost only has to
    /// be cheap and bounded (≈ 2 ms, 1 MiB).
    pub const VOTER: HashCost = HashCost {
        log_n: 10,
        r: 8,
        p: 1,
    };
    /// Admin passwords are chosen by people: OWASP's scrypt floor and the crate's
    /// recommendation (N = 2^17, r = 8, p = 1; ≈ 260 ms, 128 MiB).
    pub const ADMIN: HashCost = HashCost {
        log_n: 17,
        r: 8,
        p: 1,
    };

    /// Memory one computation needs, in bytes (128 · r · N).
    pub fn memory_bytes(self) -> u64 {
        128 * u64::from(self.r) * (1u64 << self.log_n)
    }

    fn params(self) -> Result<Params> {
        Params::new(self.log_n, self.r, self.p, Params::RECOMMENDED_LEN)
            .map_err(|e| VotingError::Internal(format!("scrypt parameters: {e}")))
    }
}

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| VotingError::Internal(format!("no randomness: {e}")))
}

/// `n` random base32 characters (5 bits each) in dash-separated groups of `group`.
fn random_code(n: usize, group: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    random_bytes(&mut bytes)?;
    let mut out = String::with_capacity(n + n / group);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % group == 0 {
            out.push('-');
        }
        // 256 is a multiple of 32, so the low 5 bits are uniform.
        out.push(BASE32[usize::from(b & 31)] as char);
    }
    Ok(out)
}

/// A new voter credential: 20 base32 characters (100 bits) as `XXXXX-XXXXX-XXXXX-XXXXX`.
pub fn generate_voter_credential() -> Result<Secret> {
    random_code(20, 5).map(Secret)
}

/// A new ballot receipt: 28 base32 characters (140 bits) as `XXXX-XXXX-…` (7 groups).
pub fn generate_receipt() -> Result<Secret> {
    random_code(28, 4).map(Secret)
}

/// The canonical form of a typed code: case, blanks and dashes do not matter, and
/// the digits people confuse with letters (0, 1, 8) are read as O, I, B.
pub fn normalize_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            '0' => 'O',
            '1' => 'I',
            '8' => 'B',
            other => other,
        })
        .collect()
}

/// SHA-256 of a receipt's canonical form: receipts carry 140 bits, so a fast
/// hash is enough to make the stored value useless for forging one.
pub fn receipt_hash(receipt: &str) -> [u8; 32] {
    Sha256::digest(normalize_code(receipt).as_bytes()).into()
}

/// Hashes `secret` with scrypt at `cost` and a fresh salt; returns a PHC string.
pub fn hash_secret(secret: &str, cost: HashCost) -> Result<String> {
    let mut salt = [0u8; 16];
    random_bytes(&mut salt)?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| VotingError::Internal(format!("salt: {e}")))?;
    Scrypt
        .hash_password_customized(secret.as_bytes(), None, None, cost.params()?, &salt)
        .map(|h| h.to_string())
        .map_err(|e| VotingError::Internal(format!("scrypt: {e}")))
}

/// Whether `secret` matches the PHC string `phc` (constant-time comparison in the
/// crate). A malformed stored hash never matches.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Scrypt.verify_password(secret.as_bytes(), &parsed).is_ok(),
        Err(e) => {
            log::error!("a stored credential hash is malformed: {e}");
            false
        }
    }
}

/// A PHC string at `cost` for a secret nobody knows: verifying against it takes as
/// long as a real check, so an unknown account answers as slowly as a known one.
pub(crate) fn decoy_hash(cost: HashCost) -> &'static str {
    static VOTER: OnceLock<String> = OnceLock::new();
    static ADMIN: OnceLock<String> = OnceLock::new();
    let cell = if cost == HashCost::ADMIN {
        &ADMIN
    } else {
        &VOTER
    };
    cell.get_or_init(|| {
        let mut junk = [0u8; 24];
        let _ = random_bytes(&mut junk);
        let secret: String = junk.iter().map(|b| format!("{b:02x}")).collect();
        hash_secret(&secret, cost).unwrap_or_default()
    })
}

/// A counting semaphore bounding concurrent scrypt computations, so memory use
/// stays at `permits × cost.memory_bytes()` however many clients sign in at once.
#[derive(Debug)]
pub struct HashLimiter {
    free: Mutex<usize>,
    freed: Condvar,
    permits: usize,
}

impl HashLimiter {
    /// A limiter with `permits` slots (at least one).
    pub fn new(permits: usize) -> Self {
        let permits = permits.max(1);
        HashLimiter {
            free: Mutex::new(permits),
            freed: Condvar::new(),
            permits,
        }
    }

    /// One slot per core: more would only queue inside the CPU scheduler.
    pub fn per_core() -> Self {
        HashLimiter::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// How many computations may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Waits for a slot; the slot is released when the guard drops.
    pub fn acquire(&self) -> HashPermit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|p| p.into_inner());
        }
        *free -= 1;
        HashPermit { limiter: self }
    }
}

/// A held slot of a [`HashLimiter`].
#[derive(Debug)]
pub struct HashPermit<'a> {
    limiter: &'a HashLimiter,
}

impl Drop for HashPermit<'_> {
    fn drop(&mut self) {
        let mut free = self.limiter.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += 1;
        self.limiter.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_promised_shape_and_entropy() {
        let c = generate_voter_credential().unwrap();
        let c = c.expose();
        assert_eq!(c.len(), 23);
        assert_eq!(c.matches('-').count(), 3);
        assert_eq!(normalize_code(c).len() * 5, 100);
        let r = generate_receipt().unwrap();
        assert_eq!(normalize_code(r.expose()).len() * 5, 140);
        assert_ne!(generate_receipt().unwrap(), r);
    }

    #[test]
    fn typed_codes_are_forgiving() {
        assert_eq!(normalize_code(" abcd-0ef1 8 "), "ABCDOEFIB");
        assert_eq!(receipt_hash("ABCD-EFGH"), receipt_hash("abcd efgh"));
    }

    #[test]
    fn hashes_verify_only_the_right_secret() {
        let h = hash_secret("correct horse", HashCost::VOTER).unwrap();
        assert!(h.starts_with("$scrypt$ln=10,r=8,p=1$"), "{h}");
        assert!(verify_secret("correct horse", &h));
        assert!(!verify_secret("correct horsE", &h));
        assert!(!verify_secret("correct horse", "not a phc string"));
        assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
    }
}
