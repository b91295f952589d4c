import type { Patient } from '@medplum/fhirtypes';
import { Random } from './random.js';

/**
 * Different people sharing one birth date, as in a community of common names (issue 16: storage and
 * create time must stay flat as 10,000 records share a birth date). Surnames follow their frequencies
 * among Vietnamese people (Nguyen about 38 %, Tran 11 %, Le 9.5 % ... as commonly cited from the 2009
 * census-based surname surveys), given names from a short list of common ones, so thousands share a first
 * name and hundreds a full name; each person has their own record number and mobile number, no address
 * (what a walk-in registration often holds). All of them are different people: none may be linked.
 */
const SURNAMES: [string, number][] = [
  ['Nguyen', 38], ['Tran', 11], ['Le', 9.5], ['Pham', 7.1], ['Hoang', 5.1], ['Huynh', 5.1], ['Phan', 4.5],
  ['Vu', 3.9], ['Vo', 3.9], ['Dang', 2.1], ['Bui', 2], ['Do', 1.4], ['Ho', 1.3], ['Ngo', 1.3], ['Duong', 1], ['Ly', 0.5],
];
const GIVEN = ['Minh', 'Anh', 'Linh', 'Huong', 'Thao', 'Trang', 'Tuan', 'Hung', 'Dung', 'Hai', 'Nam', 'Long', 'Lan', 'Mai', 'Hoa', 'Son'];

export function sharedBirthDatePeople(n: number, birthDate = '1990-01-01', seed = 16): Patient[] {
  const random = new Random(seed);
  const total = SURNAMES.reduce((sum, [, w]) => sum + w, 0);
  const surname = (): string => {
    let x = random.next() * total;
    for (const [name, w] of SURNAMES) {
      if ((x -= w) < 0) return name;
    }
    return SURNAMES[0][0];
  };
  return Array.from({ length: n }, (_, i) => ({
    resourceType: 'Patient',
    identifier: [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: 'urn:example:community-clinic:mrn', value: `cc-${i}` }],
    name: [{ family: surname(), given: [random.pick(GIVEN)] }],
    birthDate,
    telecom: [{ system: 'phone', value: `09${String(10_000_000 + i * 7919 % 90_000_000).padStart(8, '0')}` }],
  }));
}
