//! "Did you mean" suggestions for misspelt keys and placeholders.

/// The candidate closest to `word`, if one is close enough to be a plausible typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(distance, c)| distance <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn finds_typos_but_not_strangers() {
        let keys = ["processes", "timeout", "grace-period"];
        assert_eq!(nearest("timout", keys), Some("timeout"));
        assert_eq!(nearest("proceses", keys), Some("processes"));
        assert_eq!(nearest("grace_period", keys), Some("grace-period"));
        assert_eq!(nearest("colour", keys), None);
    }
}
