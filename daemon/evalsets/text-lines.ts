/**
 * The strings eval sets render. Latin lines mix words, numbers, prices, dates and codes; Chinese lines are 4–12
 * common characters. Every character is in ppocr_keys_v1.txt (a test checks it). Calibration and test splits draw
 * from different seeds and a split never takes a string the other one holds.
 */
import { EdgerunError } from '../errors.ts';
import type { Script } from './fonts.ts';
import type { Rng } from './random.ts';

const WORDS = (
  'the of and to in is for on with as by at from that this be are was it an or not have has will can all new more ' +
  'about time year people way day man thing woman life child world school state family student group country ' +
  'problem hand part place case week company system program question work government number night point home water ' +
  'room mother area money story fact month lot right study book eye job word business issue side kind head house ' +
  'service friend father power hour game line end member law car city community name president team minute idea ' +
  'kid body information back parent face others level office door health person art war history party result change ' +
  'morning reason research girl guy moment air teacher force education open close exit entrance parking station ' +
  'street road avenue north south east west total price sale free coffee tea bread milk fresh daily menu order ' +
  'ticket gate floor platform train bus taxi airport hotel bank market garden park river bridge tower center ' +
  'account invoice receipt amount balance payment date customer address phone email website delivery package ' +
  'battery engine speed limit warning caution danger stop slow left turn only ahead lane zone area private public ' +
  'Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April May June July August ' +
  'September October November December London Paris Berlin Tokyo Beijing Shanghai Madrid Rome Vienna Sydney'
).split(' ');

const CHINESE = [...(
  '的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用' +
  '发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从知使工意现动全高部问机点开长外' +
  '新两间女把身民力实想正很内本手各因重物老向表情战美头些最产理明体关相回性已给气比由利西东海路先水加或城市电山车南北花' +
  '春夏秋冬风雨雪云早晚门口店书读写字笔纸桌椅饭菜茶酒米肉鱼鸡蛋牛羊猪马鸟猫狗树草林石河湖江岛桥街楼房屋院校园医银司商场' +
  '超广站飞火汽铁交租船票价钱元角号码话网邮件信息服务办室议营业周末假节快乐欢迎光临谢请注安禁止吸烟入停收费免特优惠打折' +
  '品热卖推荐牌质量保证售维修联系址科技展建设管济文化教育历史社环境护健康活'
)];

function capitalise(word: string): string {
  return word[0].toUpperCase() + word.slice(1);
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function latinLine(rng: Rng, maxChars: number): string {
  const kind = rng.int(0, 9);
  const words = (count: number) => Array.from({ length: count }, () => rng.pick(WORDS));
  let line: string;
  switch (kind) {
    case 0: line = `${rng.pick(['$', 'EUR ', 'USD '])}${rng.int(1, 9999)}.${pad2(rng.int(0, 99))}`; break;
    case 1: line = `${rng.int(2000, 2030)}-${pad2(rng.int(1, 12))}-${pad2(rng.int(1, 28))}`; break;
    case 2: line = `${pad2(rng.int(0, 23))}:${pad2(rng.int(0, 59))}`; break;
    case 3: line = `${rng.pick(['INV', 'NO', 'REF', 'ID', 'SN'])}-${rng.int(100, 99999)}`; break;
    case 4: line = `${rng.int(1, 999)} ${capitalise(rng.pick(WORDS))} ${rng.pick(['Street', 'Road', 'Avenue'])}`; break;
    case 5: line = words(rng.int(1, 3)).map(capitalise).join(' '); break;
    case 6: line = `${capitalise(words(rng.int(2, 4)).join(' '))}${rng.pick(['.', ',', '!', '?', ':'])}`; break;
    case 7: line = words(rng.int(1, 2)).join(' ').toUpperCase(); break;
    case 8: line = `${rng.pick(WORDS)}${rng.pick(['@', '.', '_'])}${rng.pick(WORDS)}${rng.int(1, 99)}`; break;
    default: line = `${capitalise(rng.pick(WORDS))} ${rng.int(1, 500)} (${rng.pick(WORDS)})`; break;
  }
  return [...line].slice(0, maxChars).join('').trim();
}

function chineseLine(rng: Rng, minChars: number, maxChars: number): string {
  return Array.from({ length: rng.int(minChars, maxChars) }, () => rng.pick(CHINESE)).join('');
}

export interface LineLimits {
  latinMaxChars: number;
  chineseMinChars: number;
  chineseMaxChars: number;
}

export const REC_LINE_LIMITS: LineLimits = { latinMaxChars: 24, chineseMinChars: 4, chineseMaxChars: 12 };

/**
 * Draws fresh lines for one split: never a string from `exclude` (the other split's strings) and never one it has
 * already given, so a set's labels are unique and splits are disjoint.
 */
export class LineSource {
  /** `taken` may be shared by the sources of one split so that its tasks never repeat a string either. */
  constructor(private readonly rng: Rng, private readonly exclude: ReadonlySet<string> = new Set(),
    readonly taken = new Set<string>(), private readonly limits = REC_LINE_LIMITS) {}

  next(script: Script): string {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const line = script === 'latin'
        ? latinLine(this.rng, this.limits.latinMaxChars)
        : chineseLine(this.rng, this.limits.chineseMinChars, this.limits.chineseMaxChars);
      if (line.length > 0 && !this.taken.has(line) && !this.exclude.has(line)) {
        this.taken.add(line);
        return line;
      }
    }
    throw new EdgerunError('EDGERUN_ERR_EVALSET', `no fresh ${script} line after 1000 draws: the requested set is larger than the string space`, { script });
  }
}

/** Throws when a label string occurs in both splits. */
export function assertDisjoint(calib: Iterable<string>, test: Iterable<string>): void {
  const testSet = new Set(test);
  for (const label of calib) {
    if (testSet.has(label)) throw new EdgerunError('EDGERUN_ERR_EVALSET', `label '${label}' is in both the calibration and the test split`, { label });
  }
}

export const TEXT_POOLS = { words: WORDS, chinese: CHINESE };
