// One-shot RelayMesh script agent in Node: turns a title into a URL slug.
// Reads one JSON request on stdin and writes one JSON document on stdout.
// Input: {"title": "..."}; without a title it uses the first dependency output that has one.
let text = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (text += chunk));
process.stdin.on("end", () => {
  const { input, deps } = JSON.parse(text);
  const title = input?.title ?? Object.values(deps ?? {}).find((d) => typeof d?.title === "string")?.title;
  if (typeof title !== "string") {
    process.stderr.write(`slugify: input needs a "title" string, got ${JSON.stringify(input)}\n`);
    process.exit(78); // do not retry: the same input would fail again
  }
  const slug = title
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  process.stdout.write(JSON.stringify({ title, slug }) + "\n");
});
