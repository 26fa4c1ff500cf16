// The page: "Try it", "Read a number" and "Explore", switched by the address's fragment (#try,
// #read, #explore/<id>), so
// the back button and links work and nothing reloads.

import { listModels } from "./api.js";
import { showExplore } from "./explore.js";
import { setUpRead } from "./read.js";
import { setUpTry } from "./try.js";

function route() {
  const [view, id] = location.hash.replace(/^#/, "").split("/");
  const explore = view === "explore";
  const read = view === "read";
  document.getElementById("try-view").hidden = explore || read;
  document.getElementById("read-view").hidden = !read;
  document.getElementById("explore-view").hidden = !explore;
  for (const [id, current] of [["nav-try", !explore && !read], ["nav-read", read], ["nav-explore", explore]]) {
    const link = document.getElementById(id);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (explore) showExplore(id);
}

async function start() {
  // The reading view needs no model list (/read picks the upload default), so it works at once.
  setUpRead();
  window.addEventListener("hashchange", route);
  route();
  try {
    const list = await listModels();
    setUpTry(list.models);
  } catch (error) {
    document.getElementById("status").textContent = `Could not list the models: ${error.message}`;
  }
}

start();
