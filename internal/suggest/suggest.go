// Package suggest finds the word a typo meant: a config key, a command, a
// flag or a tenant name, for the "did you mean …?" of an error.
//
// It imports only the standard library's basics: tapis-token links it,
// and it allocates nothing, since tapis-token may ask it on the token path.
package suggest

// Closest returns the candidate that word is a likely typo of, or "" when
// none is close: the same letters ignoring case, '_' and '-', or an edit
// distance (insertions, deletions, substitutions and swaps of two
// neighbours) of at most 2, or a third of word's length when that is more.
// Of several, the first closest wins. word itself, when it is a candidate,
// is not a typo: Closest returns "".
func Closest(word string, candidates []string) string {
	if word == "" {
		return ""
	}
	best, bestDist := "", max(3, len(word)/3+1)
	for _, c := range candidates {
		if c == word {
			return ""
		}
	}
	for _, c := range candidates {
		if sameLetters(c, word) {
			return c
		}
		if d := Distance(word, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// sameLetters reports whether a and b differ only in case, '_' and '-'.
func sameLetters(a, b string) bool {
	i, j := 0, 0
	for {
		for i < len(a) && (a[i] == '_' || a[i] == '-') {
			i++
		}
		for j < len(b) && (b[j] == '_' || b[j] == '-') {
			j++
		}
		if i == len(a) || j == len(b) {
			return i == len(a) && j == len(b)
		}
		if lower(a[i]) != lower(b[j]) {
			return false
		}
		i++
		j++
	}
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// maxLen is the longest word Distance compares; nothing longer is a typo
// of a key, a command or a tenant name (at most 63 characters).
const maxLen = 64

// Distance is the optimal-string-alignment distance between a and b, in
// bytes: how many insertions, deletions, substitutions and swaps of
// neighbours turn a into b. Words longer than 64 bytes are far from
// everything.
func Distance(a, b string) int {
	if len(a) > maxLen || len(b) > maxLen {
		return 1 << 30
	}
	// Three rows of the table, on the stack.
	var rows [3][maxLen + 1]int
	prev2, prev, cur := &rows[0], &rows[1], &rows[2]
	for j := 0; j <= len(b); j++ {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
