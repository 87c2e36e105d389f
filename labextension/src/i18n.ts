/** The sidebar's strings go through Lab's ITranslator (domain "jupyreg"). */

import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';

let bundle: TranslationBundle = nullTranslator.load('jupyreg');

export function setTranslator(translator: ITranslator | null): void {
  bundle = (translator ?? nullTranslator).load('jupyreg');
}

/** `trans.__('Approve %1', name)`, `trans._n(...)`: the current bundle. */
export const trans = {
  __: (msgid: string, ...args: any[]): string => bundle.__(msgid, ...args),
  _n: (singular: string, plural: string, n: number, ...args: any[]): string =>
    bundle._n(singular, plural, n, ...args)
};
