// slidev-addon-citations fetches `biblio/<file>` relative to the current route, so on
// /presenter/3 it asks for /presenter/biblio/... and every citation shows #RefErr.
// Resolve those requests against the deck's base URL instead, on every route.
import { defineAppSetup } from '@slidev/types'

export default defineAppSetup(() => {
  if (typeof window === 'undefined' || (window as any).__biblioFetchFixed)
    return
  const originalFetch = window.fetch.bind(window)
  window.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    if (typeof input === 'string' && input.startsWith('biblio/'))
      input = `${import.meta.env.BASE_URL}${input}`
    return originalFetch(input, init)
  }
  ;(window as any).__biblioFetchFixed = true
})
