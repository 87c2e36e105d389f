/** Remove the seeded registry folder (keep it with JUPYREG_UI_KEEP=1). */
const fs = require('fs');

module.exports = async () => {
  const runDir = process.env.JUPYREG_UI_RUN_DIR;
  if (
    runDir &&
    !process.env.JUPYREG_UI_KEEP &&
    runDir.includes('jupyreg-ui-')
  ) {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
};
