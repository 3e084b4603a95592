// Headless Chromium for the page's tests (playwright-core brings no browser of its own).
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

// The ID token of the user the page signed in, as the Firebase SDK keeps it in IndexedDB: for
// what a test does as that user beside the page (jobs the form cannot start, uploads the local
// storage emulator refuses from a browser: it answers no CORS preflight).
export function userToken(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const opening = indexedDB.open("firebaseLocalStorageDb");
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const store = opening.result.transaction("firebaseLocalStorage").objectStore("firebaseLocalStorage");
      const all = store.getAll();
      all.onsuccess = () => resolve(all.result.find((entry) => entry.value?.stsTokenManager).value.stsTokenManager.accessToken);
    };
  }));
}

/** Call the API as the page's user; resolves to the JSON answer. */
export async function callAsUser(page, method, path, body) {
  const response = await fetch(new URL(path, page.url()), {
    method,
    headers: { Authorization: `Bearer ${await userToken(page)}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}
