import { workspaceProject } from '../../jest.workspace.js';

export default workspaceProject('resource-kit');
