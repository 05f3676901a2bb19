// Validate the HubSpot project in ../ offline with HubSpot's own parser
// (@hubspot/project-parsing-lib, the library `hs project upload` builds on).
//
// Offline it checks: hsproject.json (name, srcDir inside the project, platformVersion known to
// HubSpot), every *-hsmeta.json found, parsed and typed by its folder (src/app/ holds type
// "app"), a valid uid. HubSpot's JSON schemas of each component are fetched from an
// authenticated account (project-schemas/v3/<platformVersion>), so that last step is skipped
// here; tests/test_hubspot_app_project.py checks the documented app fields instead.
// Prints one JSON object: {ok, platformVersion, components: [{uid, type, file}], errors}.
// Exit 0 when ok, 1 otherwise.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  parseProjectConfig,
  isKnownPlatformVersion,
  LATEST_SUPPORTED_PLATFORM_VERSION,
} from '@hubspot/project-parsing-lib/projects';
import { translate } from '@hubspot/project-parsing-lib/translate';
import { validateUid } from '@hubspot/project-parsing-lib/uid';
import { Components } from '@hubspot/project-parsing-lib/constants';
import { mapToUserFacingType } from '@hubspot/project-parsing-lib/transform';

const projectDir = path.resolve(process.argv[2] || path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
const errors = [];
let config = {};
const components = [];
try {
  config = parseProjectConfig(projectDir);
  if (!isKnownPlatformVersion(config.platformVersion)) {
    errors.push(`platformVersion ${config.platformVersion} is unknown (latest: ${LATEST_SUPPORTED_PLATFORM_VERSION})`);
  }
  const { intermediateRepresentation, skippedHsMetaFiles } = await translate(
    { projectSourceDir: path.join(projectDir, config.srcDir), platformVersion: config.platformVersion },
    { skipValidation: true },
  );
  for (const skipped of skippedHsMetaFiles || []) errors.push(`skipped: ${JSON.stringify(skipped)}`);
  for (const [uid, node] of Object.entries(intermediateRepresentation.intermediateNodesIndexedByUid)) {
    const uidError = validateUid(uid);
    if (uidError) errors.push(`${uid}: ${uidError}`);
    // the folder each component type must live in, as HubSpot's validator computes it
    const type = mapToUserFacingType(node.componentType);
    const component = Components[type];
    if (!component) {
      errors.push(`${uid}: unknown component type ${node.componentType}`);
    } else {
      const parent = component.parentComponent ? Components[component.parentComponent].dir : '';
      const expected = path.join(parent, component.dir);
      if (path.dirname(node.metaFilePath) !== expected) {
        errors.push(`${node.metaFilePath}: a ${type} belongs in ${expected}/`);
      }
    }
    if (!node.config) errors.push(`${uid}: no config block`);
    components.push({ uid, type: node.componentType, file: node.metaFilePath });
  }
} catch (e) {
  errors.push(String(e && e.message ? e.message : e));
}
console.log(JSON.stringify({ ok: errors.length === 0, platformVersion: config.platformVersion, components, errors }, null, 2));
process.exit(errors.length === 0 ? 0 : 1);
