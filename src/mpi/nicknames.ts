/**
 * Given-name variants that refer to the same person in English-speaking registration data: nicknames,
 * diminutives and common spelling variants, each group written once. A name maps to every group it
 * belongs to ("Chris" is Christopher and Christine), so matching asks "do these two names share a group",
 * never "are they equal after substitution". Lower case, ASCII (names are normalised before lookup).
 */
const GROUPS: string[][] = [
  ['abigail', 'abby', 'gail'],
  ['alexander', 'alex', 'al', 'sandy', 'xander'],
  ['alexandra', 'alex', 'alexa', 'sandra', 'sandy', 'lexi'],
  ['albert', 'al', 'bert', 'bertie'],
  ['alfred', 'al', 'alf', 'fred', 'freddie'],
  ['andrew', 'andy', 'drew'],
  ['anthony', 'tony', 'antony'],
  ['barbara', 'barb', 'babs', 'barbie'],
  ['benjamin', 'ben', 'benny', 'benji'],
  ['catherine', 'katherine', 'kathryn', 'cathy', 'kathy', 'kate', 'katie', 'kat', 'cat', 'kitty'],
  ['charles', 'charlie', 'chuck', 'chas'],
  ['christine', 'christina', 'chris', 'chrissy', 'tina'],
  ['christopher', 'chris', 'kit', 'topher'],
  ['daniel', 'dan', 'danny'],
  ['david', 'dave', 'davey'],
  ['deborah', 'debra', 'debbie', 'deb'],
  ['donald', 'don', 'donnie'],
  ['dorothy', 'dot', 'dottie', 'dolly'],
  ['edward', 'ed', 'eddie', 'ted', 'teddy', 'ned'],
  ['elizabeth', 'liz', 'lizzie', 'beth', 'betty', 'betsy', 'eliza', 'libby', 'lisa', 'elisabeth'],
  ['eleanor', 'ellie', 'nell', 'nora', 'elinor'],
  ['frances', 'fran', 'frannie'],
  ['francis', 'frank', 'fran'],
  ['frederick', 'fred', 'freddie', 'fritz'],
  ['gregory', 'greg'],
  ['henry', 'hank', 'harry', 'hal'],
  ['harold', 'hal', 'harry'],
  ['isabella', 'isabel', 'bella', 'izzy'],
  ['jacob', 'jake', 'jakob'],
  ['james', 'jim', 'jimmy', 'jamie'],
  ['jennifer', 'jen', 'jenny', 'jenn'],
  ['jessica', 'jess', 'jessie'],
  ['john', 'jon', 'johnny', 'jack', 'jonathan'],
  ['jonathan', 'jon', 'jonny', 'nathan'],
  ['joseph', 'joe', 'joey', 'jose'],
  ['josephine', 'jo', 'josie'],
  ['joshua', 'josh'],
  ['judith', 'judy', 'jude'],
  ['kenneth', 'ken', 'kenny'],
  ['lawrence', 'laurence', 'larry', 'laurie'],
  ['leonard', 'leo', 'len', 'lenny'],
  ['margaret', 'maggie', 'meg', 'peggy', 'marge', 'margie', 'greta', 'daisy'],
  ['mary', 'molly', 'polly', 'mae', 'maria', 'marie'],
  ['matthew', 'matt', 'matty'],
  ['michael', 'mike', 'mikey', 'mick', 'mickey'],
  ['nicholas', 'nick', 'nicky', 'nico'],
  ['patricia', 'pat', 'patty', 'tricia', 'trish'],
  ['patrick', 'pat', 'paddy', 'rick'],
  ['peter', 'pete'],
  ['philip', 'phillip', 'phil', 'pip'],
  ['rebecca', 'becky', 'becca', 'beck'],
  ['richard', 'rick', 'ricky', 'rich', 'dick', 'richie'],
  ['robert', 'rob', 'robbie', 'bob', 'bobby', 'bert'],
  ['ronald', 'ron', 'ronnie'],
  ['samuel', 'sam', 'sammy'],
  ['samantha', 'sam', 'sammy'],
  ['sarah', 'sara', 'sally', 'sadie'],
  ['stephen', 'steven', 'steve', 'stevie'],
  ['susan', 'sue', 'susie', 'suzanne', 'suzy'],
  ['theodore', 'ted', 'teddy', 'theo'],
  ['thomas', 'tom', 'tommy'],
  ['timothy', 'tim', 'timmy'],
  ['victoria', 'vicky', 'tori', 'vic'],
  ['walter', 'walt', 'wally'],
  ['william', 'will', 'bill', 'billy', 'willy', 'liam'],
  ['zachary', 'zach', 'zack'],
];

const groupsByName = new Map<string, number[]>();
GROUPS.forEach((group, index) => {
  for (const name of group) {
    groupsByName.set(name, [...(groupsByName.get(name) ?? []), index]);
  }
});

/** True when two normalised given names are nickname or spelling variants of each other. */
export function areNicknames(a: string, b: string): boolean {
  if (a === b) {
    return true;
  }
  const ga = groupsByName.get(a);
  const gb = groupsByName.get(b);
  return !!ga && !!gb && ga.some((g) => gb.includes(g));
}

/** A canonical key for blocking: the first group's formal name, or the name itself. */
export function canonicalGivenName(name: string): string {
  const groups = groupsByName.get(name);
  return groups ? GROUPS[groups[0]][0] : name;
}

/** Every other name that shares a group with this normalised given name (for generating test data). */
export function nicknameVariants(name: string): string[] {
  const variants = new Set((groupsByName.get(name) ?? []).flatMap((g) => GROUPS[g]));
  variants.delete(name);
  return [...variants];
}
