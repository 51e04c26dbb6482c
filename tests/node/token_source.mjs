// Fetch a token from the service with the real livekit-client's TokenSource.endpoint,
// as a web app would, and print what it got as one JSON line.
// Usage: node token_source.mjs <endpoint url> <authorization header> <options JSON>
import { TokenSource } from 'livekit-client';

const [url, authorization, options] = process.argv.slice(2);
const source = TokenSource.endpoint(url, { headers: { Authorization: authorization } });
try {
  const answer = await source.fetch(JSON.parse(options));
  console.log(JSON.stringify(answer));
} catch (error) {
  console.error(`TokenSource.endpoint failed: ${error}`);
  process.exit(1);
}
