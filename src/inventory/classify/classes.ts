/**
 * The data classes the inventory recognizes and what each means under GDPR, HIPAA, PCI DSS and
 * CCPA/CPRA. The mapping says which category of each regulation a value of the class falls in when
 * it relates to a person; whether a regulation applies to a given API (a HIPAA covered entity, a
 * cardholder data environment, a business under CCPA) is for its owner to decide. See
 * docs/inventory.md for the sources.
 */

export type DataClassId =
  | 'email'
  | 'phone'
  | 'payment-card'
  | 'card-security-code'
  | 'iban'
  | 'us-ssn'
  | 'national-id'
  | 'ip-address'
  | 'date-of-birth'
  | 'geo-location'
  | 'jwt'
  | 'credential'
  | 'password'

export type Regulation = 'gdpr' | 'hipaa' | 'pci-dss' | 'ccpa'

export interface DataClass {
  id: DataClassId
  label: string
  /** `high`: a breach needs notification in most regimes, or the value grants access. */
  sensitivity: 'high' | 'medium'
  /** Regulation → the category the class falls in under it. */
  regulations: Partial<Record<Regulation, string>>
}

const GDPR_PD = 'personal data (Art. 4(1))'
const CCPA_ID = 'personal information: identifiers (§1798.140(v)(1)(A))'
const HIPAA_ID = (n: string) => `PHI identifier when linked to health data (§164.514(b)(2)(i)${n})`
const CREDENTIALS = {
  gdpr: 'security of processing (Art. 32): access credentials',
  ccpa: 'sensitive personal information: account log-in with credentials (§1798.140(ae)(1)(B))',
  'pci-dss': 'authentication factors, unreadable in transit and at rest (Req. 8.3.2)',
} as const

/** Every class, in the order the dashboard and reports list them. */
export const DATA_CLASSES: readonly DataClass[] = [
  {
    id: 'payment-card',
    label: 'Payment card number (PAN)',
    sensitivity: 'high',
    regulations: {
      'pci-dss': 'cardholder data: primary account number (Req. 3)',
      gdpr: GDPR_PD,
      ccpa: 'sensitive personal information: financial account with access code (§1798.140(ae)(1)(B))',
      hipaa: HIPAA_ID('(J) account numbers'),
    },
  },
  {
    id: 'card-security-code',
    label: 'Card security code (CVV/CVC)',
    sensitivity: 'high',
    regulations: {
      'pci-dss': 'sensitive authentication data: never stored after authorization (Req. 3.3)',
      ccpa: 'sensitive personal information: financial account access code (§1798.140(ae)(1)(B))',
    },
  },
  {
    id: 'iban',
    label: 'Bank account (IBAN)',
    sensitivity: 'high',
    regulations: {
      gdpr: GDPR_PD,
      ccpa: 'sensitive personal information: financial account (§1798.140(ae)(1)(B))',
      hipaa: HIPAA_ID('(J) account numbers'),
    },
  },
  {
    id: 'us-ssn',
    label: 'US Social Security number',
    sensitivity: 'high',
    regulations: {
      gdpr: 'national identification number (Art. 87)',
      ccpa: 'sensitive personal information: Social Security number (§1798.140(ae)(1)(A))',
      hipaa: HIPAA_ID('(G) Social Security numbers'),
    },
  },
  {
    id: 'national-id',
    label: 'National identification number (UK NINO, ES DNI/NIE, BR CPF, NL BSN, CA SIN, IN Aadhaar)',
    sensitivity: 'high',
    regulations: {
      gdpr: 'national identification number (Art. 87)',
      ccpa: 'sensitive personal information: government identifier (§1798.140(ae)(1)(A))',
      hipaa: HIPAA_ID('(R) any other unique identifying number'),
    },
  },
  {
    id: 'password',
    label: 'Password (or password hash)',
    sensitivity: 'high',
    regulations: { ...CREDENTIALS },
  },
  {
    id: 'credential',
    label: 'API key, token or secret',
    sensitivity: 'high',
    regulations: { ...CREDENTIALS },
  },
  {
    id: 'jwt',
    label: 'JSON Web Token',
    sensitivity: 'high',
    regulations: { ...CREDENTIALS },
  },
  {
    id: 'date-of-birth',
    label: 'Date of birth',
    sensitivity: 'medium',
    regulations: { gdpr: GDPR_PD, ccpa: CCPA_ID, hipaa: HIPAA_ID('(C) dates related to an individual') },
  },
  {
    id: 'geo-location',
    label: 'Precise geolocation',
    sensitivity: 'medium',
    regulations: {
      gdpr: 'personal data: location data (Art. 4(1))',
      ccpa: 'sensitive personal information: precise geolocation (§1798.140(ae)(1)(C))',
      hipaa: HIPAA_ID('(B) geographic subdivisions smaller than a state'),
    },
  },
  {
    id: 'email',
    label: 'Email address',
    sensitivity: 'medium',
    regulations: { gdpr: GDPR_PD, ccpa: CCPA_ID, hipaa: HIPAA_ID('(F) email addresses') },
  },
  {
    id: 'phone',
    label: 'Phone number',
    sensitivity: 'medium',
    regulations: { gdpr: GDPR_PD, ccpa: CCPA_ID, hipaa: HIPAA_ID('(D) telephone numbers') },
  },
  {
    id: 'ip-address',
    label: 'IP address',
    sensitivity: 'medium',
    regulations: {
      gdpr: 'personal data: online identifier (Art. 4(1), Recital 30)',
      ccpa: CCPA_ID,
      hipaa: HIPAA_ID('(O) IP addresses'),
    },
  },
]

const BY_ID = new Map(DATA_CLASSES.map((c) => [c.id, c]))

/** The class with this id, or undefined. */
export function dataClass(id: string): DataClass | undefined {
  return BY_ID.get(id as DataClassId)
}

/** True for a known class id. */
export function isDataClassId(id: string): id is DataClassId {
  return BY_ID.has(id as DataClassId)
}

/** The regulations a set of classes touches, sorted. */
export function regulationsOf(ids: Iterable<string>): Regulation[] {
  const out = new Set<Regulation>()
  for (const id of ids) {
    const c = BY_ID.get(id as DataClassId)
    if (c) for (const r of Object.keys(c.regulations) as Regulation[]) out.add(r)
  }
  return [...out].sort()
}
