// The few calls the page makes, all to its own origin. Errors carry the service's message
// (every error body is {"error": ...}).

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function parse(response) {
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

export async function getJSON(path) {
  return parse(await fetch(path, { headers: { Accept: "application/json" } }));
}

let modelList = null;

/** GET /models, once per page view (both views use it). */
export function listModels() {
  modelList ??= getJSON("/models").catch((error) => {
    modelList = null;
    throw error;
  });
  return modelList;
}

/** Every ready model's answer for one image (a Blob or File), with what the models saw. */
export async function compareImage(image) {
  const response = await fetch("/models/compare?explain=true", {
    method: "POST",
    // A raw image body: the service detects the format from the bytes, so the type is a courtesy.
    headers: { "Content-Type": image.type || "application/octet-stream", Accept: "application/json" },
    body: image,
  });
  return parse(response);
}

/** The number in one image (a Blob or File): POST /read with the upload default model. */
export async function readNumber(image) {
  const response = await fetch("/read", {
    method: "POST",
    headers: { "Content-Type": image.type || "application/octet-stream", Accept: "application/json" },
    body: image,
  });
  return parse(response);
}
