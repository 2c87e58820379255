import { isValidName, NAME_RULE, v1, type cutover } from "@cutover/protocol";
import type { AppManager } from "../apps/app-manager.js";
import { removeLbSite } from "../lb/index.js";
import type { NginxRunner } from "../nginx/index.js";
import type { OperationResult } from "./dispatcher.js";

const Status = v1.CommandResult.Status;

/**
 * RemoveApp: the app's processes, its nginx site and state on an app host (AppManager.remove),
 * and its front load-balancer site on an LB host — whichever this host has; a host with
 * neither answers OK with nothing removed.
 */
export function removeAppHandler(options: { apps: AppManager; nginx: NginxRunner }) {
  return async (command: cutover.v1.Command): Promise<OperationResult> => {
    const app = command.removeApp?.app ?? "";
    if (!isValidName(app)) return { status: Status.REJECTED, errorCode: "ERR_INVALID_APP", message: `RemoveApp names no valid app (${JSON.stringify(app)}): ${NAME_RULE}; nothing was removed` };
    const removal = await options.apps.remove(app);
    const lbSiteRemoved = await removeLbSite(options.nginx, app);
    const removed = [removal.siteRemoved && "its site", removal.stoppedColors.length > 0 && `${removal.stoppedColors.join(" and ")}`, lbSiteRemoved && "its load-balancer site", removal.stateRemoved && "its state"].filter(Boolean);
    return {
      status: Status.OK,
      message: removed.length > 0 ? `${app} removed: ${removed.join(", ")}` : `${app} was not on this host`,
      appRemoved: { stoppedColors: removal.stoppedColors, siteRemoved: removal.siteRemoved, lbSiteRemoved, stateRemoved: removal.stateRemoved },
    };
  };
}
