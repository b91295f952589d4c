import type { CodeableConcept, Period, Quantity, Timing } from '@medplum/fhirtypes';
import { concept, period, quantity } from './cda-values.js';
import type { XmlElement } from './xml-element.js';

/** What a substanceAdministration (medication or immunization activity) says, read once for both mappers. */
export interface Administration {
  product?: CodeableConcept;
  route?: CodeableConcept;
  dose?: Quantity;
  /** The IVL_TS effectiveTime: when the medication was or is to be taken, or the vaccine given. */
  when?: Period;
  /** A PIVL_TS effectiveTime: how often. */
  timing?: Timing;
  lotNumber?: string;
}

const PERIOD_UNITS: Record<string, 's' | 'min' | 'h' | 'd' | 'wk' | 'mo' | 'a'> = { s: 's', min: 'min', h: 'h', d: 'd', wk: 'wk', mo: 'mo', a: 'a' };

export function readAdministration(sa: XmlElement, narrative?: XmlElement): Administration {
  const material = sa.first('consumable/manufacturedProduct/manufacturedMaterial');
  const result: Administration = {
    product: concept(material?.first('code'), narrative) ?? (material?.first('name')?.text() ? { text: material.first('name')?.text() } : undefined),
    route: concept(sa.first('routeCode'), narrative),
    dose: quantity(sa.first('doseQuantity')),
    lotNumber: material?.first('lotNumberText')?.text() || undefined,
  };
  for (const time of sa.elements('effectiveTime')) {
    const type = time.attr('xsi:type') ?? '';
    if (type.endsWith('PIVL_TS')) {
      const every = quantity(time.first('period'));
      const unit = every?.unit && PERIOD_UNITS[every.unit];
      if (every && unit) result.timing = { repeat: { period: every.value, periodUnit: unit } };
    } else if (!result.when) {
      result.when = period(time);
    }
  }
  return result;
}
