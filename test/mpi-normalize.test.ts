import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { areNicknames, canonicalGivenName } from '../src/mpi/nicknames.js';
import {
  foldText,
  generationalSuffix,
  normalizeGivenNames,
  normalizePhone,
  normalizePostalCode,
  normalizeSsn,
  normalizeStreet,
  normalizeSurname,
  parseBirthDate,
} from '../src/mpi/normalize.js';
import { compareBirthDates, damerauLevenshtein, jaroWinkler, soundAlike } from '../src/mpi/similarity.js';

describe('MPI normalisation', () => {
  it('folds case, diacritics and punctuation', () => {
    assert.equal(foldText("  José  O'Brien-Müller. "), 'jose obrien muller');
  });

  it('splits hyphenated and compound surnames, drops particles and generational suffixes', () => {
    assert.deepEqual(normalizeSurname('García-López'), { full: 'garcia lopez', parts: ['garcia', 'lopez'] });
    assert.deepEqual(normalizeSurname('van der Berg'), { full: 'van der berg', parts: ['berg'] });
    assert.deepEqual(normalizeSurname('Smith Jr.'), { full: 'smith', parts: ['smith'] });
    assert.equal(normalizeSurname(' - '), undefined);
    assert.deepEqual(normalizeGivenNames(['Mary-Ann', 'J.']), ['mary', 'ann', 'j']);
  });

  it('finds the generational suffix wherever it was typed', () => {
    assert.equal(generationalSuffix([undefined, 'Smith Jr.']), 'jr');
    assert.equal(generationalSuffix(['Senior']), 'sr');
    assert.equal(generationalSuffix(['III']), 'iii');
    assert.equal(generationalSuffix(['Smith', 'John']), undefined);
  });

  it('normalises phones, postal codes and SSNs, and refuses placeholders', () => {
    assert.equal(normalizePhone('+1 (617) 555-0100'), '6175550100');
    assert.equal(normalizePhone('617.555.0100'), '6175550100');
    assert.equal(normalizePhone('x12'), undefined);
    assert.equal(normalizePostalCode('02118-1234'), '02118');
    assert.equal(normalizePostalCode('sw1a 1aa'), 'SW1A1AA');
    assert.equal(normalizeSsn('123-45-6780'), '123456780');
    for (const placeholder of ['000-12-3456', '666-12-3456', '912-34-5678', '123-00-4567', '123-45-0000', '123456789', '111-11-1111', '12345']) {
      assert.equal(normalizeSsn(placeholder), undefined, placeholder);
    }
  });

  it('parses day-precision birth dates only', () => {
    assert.deepEqual(parseBirthDate('1980-04-03'), { year: 1980, month: 4, day: 3 });
    assert.equal(parseBirthDate('1980-04'), undefined);
    assert.equal(parseBirthDate('1980-13-01'), undefined);
  });

  it('expands street abbreviations', () => {
    assert.equal(normalizeStreet(['12 Main St.', 'Apt 4']), normalizeStreet(['12 main street apartment 4']));
  });
});

describe('MPI similarity', () => {
  it('Jaro-Winkler matches the published reference values', () => {
    assert.equal(jaroWinkler('martha', 'marhta').toFixed(3), '0.961');
    assert.equal(jaroWinkler('dwayne', 'duane').toFixed(3), '0.840');
    assert.equal(jaroWinkler('dixon', 'dicksonx').toFixed(3), '0.813');
    assert.equal(jaroWinkler('abc', 'xyz'), 0);
  });

  it('Damerau-Levenshtein counts an adjacent swap as one edit', () => {
    assert.equal(damerauLevenshtein('ca', 'ac'), 1);
    assert.equal(damerauLevenshtein('kitten', 'sitting'), 3);
  });

  it('knows nicknames and sound-alike names', () => {
    assert.ok(areNicknames('bill', 'william'));
    assert.ok(areNicknames('jon', 'john'));
    assert.ok(areNicknames('chris', 'christine') && areNicknames('chris', 'christopher'));
    assert.ok(!areNicknames('christine', 'christopher'), 'sharing a nickname does not make two formal names one');
    assert.equal(canonicalGivenName('peggy'), 'margaret');
    assert.ok(soundAlike('smith', 'smyth'));
    assert.ok(soundAlike('catherine', 'kathryn'));
    assert.ok(!soundAlike('smith', 'jones'));
  });

  it('classifies birth-date disagreements by how registration errors happen', () => {
    const d = (year: number, month: number, day: number) => ({ year, month, day });
    assert.equal(compareBirthDates(d(1980, 4, 3), d(1980, 4, 3)), 'exact');
    assert.equal(compareBirthDates(d(1980, 4, 3), d(1980, 3, 4)), 'transposed');
    assert.equal(compareBirthDates(d(1980, 4, 3), d(1980, 4, 8)), 'one-digit');
    assert.equal(compareBirthDates(d(1980, 4, 3), d(1980, 4, 2)), 'one-digit', 'one day off');
    assert.equal(compareBirthDates(d(1980, 4, 3), d(1981, 4, 3)), 'one-digit');
    // A digit slip that moves the year a decade or more looks like a father and son: never 'one-digit'.
    assert.equal(compareBirthDates(d(1960, 4, 3), d(1990, 4, 3)), 'different');
    assert.equal(compareBirthDates(d(1980, 4, 3), d(1908, 4, 3)), 'different');
    assert.equal(compareBirthDates(d(1980, 4, 3), d(1980, 9, 21)), 'year-only');
    assert.equal(compareBirthDates(d(1980, 4, 3), d(1975, 9, 21)), 'different');
  });
});
