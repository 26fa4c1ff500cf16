// The page: "Try it" and "Explore", switched by the address's fragment (#try, #explore/<id>), so
// the back button and links work and nothing reloads.

import { listModels } from "./api.js";
import { showExplore } from "./explore.js";
import { setUpTry } from "./try.js";

function route() {
  const [view, id] = location.hash.replace(/^#/, "").split("/");
  const explore = view === "explore";
  document.getElementById("try-view").hidden = explore;
  document.getElementById("explore-view").hidden = !explore;
  for (const [id, current] of [["nav-try", !explore], ["nav-explore", explore]]) {
    const link = document.getElementById(id);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (explore) showExplore(id);
}

async function start() {
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
