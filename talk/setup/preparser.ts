// The citations addon's preparser (which runs before this one) rewrites every `[@key]` into
// `<Cite bref="key" />`, inside code too. decktools.prepare has already turned the citations of
// the text into components, so any such rewrite left inside code is the addon's: undo it there.
import { definePreparserSetup } from '@slidev/types'

const FENCE = /^\s*(`{3,}|~{3,})/
const ADDON_CITE = /<Cite bref="([^"]*)" \/>/g
const INLINE_CODE = /(`+)(?:(?!\1).)+?\1/g

function restore(text: string): string {
  return text.replace(ADDON_CITE, (_, key) => `[@${key}]`)
}

export default definePreparserSetup(() => [
  {
    transformRawLines(lines: string[]) {
      let fence: string | null = null
      for (let i = 0; i < lines.length; i++) {
        const opened = lines[i].match(FENCE)
        if (fence !== null) {
          lines[i] = restore(lines[i])
          if (opened && opened[1][0] === fence[0] && opened[1].length >= fence.length)
            fence = null
        }
        else if (opened) {
          fence = opened[1]
        }
        else {
          lines[i] = lines[i].replace(INLINE_CODE, span => restore(span))
        }
      }
    },
  },
])
