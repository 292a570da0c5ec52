// "Did you mean ...?" suggestions: the closest candidate by Damerau-Levenshtein
// distance (optimal string alignment: insert, delete, substitute, swap two
// neighbours), accepted only when the distance is small for the word's length.

export function editDistance(a: string, b: string): number {
  // Inputs are names, so quadratic time is fine; cap length to stay bounded.
  a = a.slice(0, 64);
  b = b.slice(0, 64);
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[(i - 1) * cols + j] + 1, d[i * cols + j - 1] + 1, d[(i - 1) * cols + j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[(i - 2) * cols + j - 2] + 1);
      d[i * cols + j] = best;
    }
  }
  return d[rows * cols - 1];
}

/** The best candidate within max(1, length/3) edits, or undefined. Ties go to the earlier candidate. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === word || c === '') continue;
    // A case-only difference (Tau vs tau) is the most likely slip of all.
    const distance = c.toLowerCase() === word.toLowerCase() ? 0.5 : editDistance(word, c);
    if (distance <= limit && distance < bestDistance) {
      best = c;
      bestDistance = distance;
    }
  }
  return best;
}
