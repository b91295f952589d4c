/** Coded vocabulary for synthetic records: real LOINC, SNOMED CT, RxNorm and CVX codes with their displays. */
export const GIVEN_FEMALE = ['Maria', 'Emma', 'Olivia', 'Ava', 'Sophia', 'Isabella', 'Mia', 'Amelia', 'Harper', 'Evelyn', 'Zoë', 'Chloé', 'Aaliyah', 'Mei', 'Priya'];
export const GIVEN_MALE = ['James', 'John', 'Robert', 'Michael', 'William', 'David', 'José', 'Liam', 'Noah', 'Ethan', 'Mateo', 'Omar', 'Wei', 'Arjun', 'Kwame'];
export const FAMILY = ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodríguez', 'Martinez', 'Nguyen', "O'Brien", 'Smith-Jones', 'Kim', 'Okafor', 'Müller', 'Patel', 'Cohen'];
export const CITIES = [
  { city: 'Springfield', state: 'MA', postalCode: '01101' },
  { city: 'Worcester', state: 'MA', postalCode: '01608' },
  { city: 'Lowell', state: 'MA', postalCode: '01852' },
  { city: 'Cambridge', state: 'MA', postalCode: '02139' },
  { city: 'Providence', state: 'RI', postalCode: '02903' },
];
export const STREETS = ['Main St', 'Oak Ave', 'Maple Dr', 'Elm St', 'Washington Blvd', 'Park Rd', 'Cedar Ln'];

export const CONDITIONS = [
  { code: '44054006', display: 'Diabetes mellitus type 2' },
  { code: '38341003', display: 'Hypertensive disorder' },
  { code: '195967001', display: 'Asthma' },
  { code: '13645005', display: 'Chronic obstructive lung disease' },
  { code: '55822004', display: 'Hyperlipidemia' },
  { code: '35489007', display: 'Depressive disorder' },
  { code: '444814009', display: 'Viral sinusitis' },
  { code: '10509002', display: 'Acute bronchitis' },
];

export const VITALS = [
  { code: '8480-6', display: 'Systolic blood pressure', unit: 'mm[Hg]', min: 100, max: 170 },
  { code: '8462-4', display: 'Diastolic blood pressure', unit: 'mm[Hg]', min: 60, max: 100 },
  { code: '8867-4', display: 'Heart rate', unit: '/min', min: 55, max: 110 },
  { code: '29463-7', display: 'Body weight', unit: 'kg', min: 45, max: 120 },
  { code: '8302-2', display: 'Body height', unit: 'cm', min: 150, max: 195 },
];

export const LABS = [
  { code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood', unit: '%', min: 4.8, max: 10.5, low: 4, high: 5.6 },
  { code: '2345-7', display: 'Glucose [Mass/volume] in Serum or Plasma', unit: 'mg/dL', min: 70, max: 220, low: 70, high: 99 },
  { code: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma', unit: 'mg/dL', min: 140, max: 280, low: 0, high: 200 },
  { code: '2160-0', display: 'Creatinine [Mass/volume] in Serum or Plasma', unit: 'mg/dL', min: 0.6, max: 1.8, low: 0.6, high: 1.3 },
];

export const MEDICATIONS = [
  { code: '860975', display: 'metformin hydrochloride 500 MG Oral Tablet' },
  { code: '314076', display: 'lisinopril 10 MG Oral Tablet' },
  { code: '617312', display: 'atorvastatin 10 MG Oral Tablet' },
  { code: '895994', display: 'albuterol 0.09 MG/ACTUAT Metered Dose Inhaler' },
  { code: '312938', display: 'sertraline 50 MG Oral Tablet' },
];

export const ALLERGIES = [
  { code: '91936005', display: 'Allergy to penicillin' },
  { code: '300913006', display: 'Shellfish allergy' },
  { code: '91935009', display: 'Allergy to peanuts' },
  { code: '419474003', display: 'Allergy to mold' },
];

export const VACCINES = [
  { code: '140', display: 'Influenza, seasonal, injectable, preservative free' },
  { code: '208', display: 'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose' },
  { code: '115', display: 'Tdap' },
  { code: '33', display: 'pneumococcal polysaccharide vaccine, 23 valent' },
];

export const ENCOUNTER_TYPES = [
  { code: '185349003', display: 'Encounter for check up' },
  { code: '50849002', display: 'Emergency room admission' },
  { code: '390906007', display: 'Follow-up encounter' },
  { code: '183452005', display: 'Emergency hospital admission' },
];
